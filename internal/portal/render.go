package portal

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"easymail/internal/portal/account"
)

// view is what every page's template gets.
type view struct {
	Lang  string
	Title string
	// Nav is the menu entry of the page.
	Nav      string
	User     *account.User
	CSRF     string
	Staff    bool
	Operator bool
	// Path is the page's path, for the language switch to come back to.
	Path string
	// Flash is a confirmation of the last change.
	Flash string
	D     any
}

// pageNames are the templates/<name>.html pages, each rendered inside layout.html.
var pageNames = []string{"login", "error", "dashboard", "messages", "message", "queue", "quarantine", "quarantined",
	"suppressions", "incidents", "incident", "sla", "customers", "domains", "users", "account"}

func funcs(lang string) template.FuncMap {
	p := printer(lang)
	return template.FuncMap{
		// t translates a literal or a typed state (customer.Status, ippool.State, …), whose values are keys.
		"t": func(key any, args ...any) string { return p.Sprintf(fmt.Sprint(key), args...) },
		"time": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				if v.IsZero() {
					return ""
				}
				return v.UTC().Format("2006-01-02 15:04:05Z")
			case *time.Time:
				if v == nil || v.IsZero() {
					return ""
				}
				return v.UTC().Format("2006-01-02 15:04:05Z")
			}
			return ""
		},
		"join":  strings.Join,
		"query": query,
		"seconds": func(n *int64) string {
			if n == nil {
				return "–"
			}
			return (time.Duration(*n) * time.Second).String()
		},
		"dur": func(n int64) string { return (time.Duration(n) * time.Second).String() },
	}
}

// query is the query string of the key, value pairs kv whose value is not empty. It is a template.URL: as a
// plain string after the "?" of an href, html/template would escape its "=" and "&" (the links of the queue
// page lost their parameters so); url.Values.Encode has escaped everything that needs it.
func query(kv ...string) template.URL {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	return template.URL(v.Encode())
}

// parseTemplates parses every page with the layout, once per language.
func parseTemplates() (map[string]map[string]*template.Template, error) {
	out := map[string]map[string]*template.Template{}
	for lang := range languages {
		out[lang] = map[string]*template.Template{}
		for _, name := range pageNames {
			t, err := template.New(name).Funcs(funcs(lang)).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
			if err != nil {
				return nil, fmt.Errorf("portal template %s: %w", name, err)
			}
			out[lang][name] = t
		}
	}
	return out, nil
}

// templateFiles lists the template sources (tests check their strings are translated).
func templateFiles() ([]string, error) { return fs.Glob(templateFS, "templates/*.html") }

// render writes a page with status.
func (s *server) render(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, name, nav, title string, data any) error {
	v := view{Lang: "en", Title: title, Nav: nav, Path: r.URL.RequestURI(), D: data}
	if rc != nil {
		u := rc.sess.User
		v.Lang, v.User, v.CSRF, v.Staff, v.Operator = rc.lang, &u, rc.sess.CSRF, rc.staff(), rc.operator()
		v.Title = rc.p.Sprintf(title)
		if f := r.URL.Query().Get("done"); f != "" {
			if msg, ok := flashes[f]; ok {
				v.Flash = rc.p.Sprintf(msg)
			}
		}
	}
	return s.write(w, v, status, name)
}

func (s *server) write(w http.ResponseWriter, v view, status int, name string) error {
	var buf bytes.Buffer
	if err := s.pages[v.Lang][name].ExecuteTemplate(&buf, "layout", v); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", v.Lang)
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// errorPage renders an error message (translated when the catalogue has it).
func (s *server) errorPage(w http.ResponseWriter, r *http.Request, lang string, status int, msg string) {
	secure(w)
	p := printer(lang)
	// A message from the catalogue is translated; any other (a service's error quoting the input) is shown
	// as it is, never used as a format, where a "%" of the input would garble it.
	text := msg
	if _, known := french[msg]; known || !strings.Contains(msg, "%") {
		text = p.Sprintf(msg)
	}
	v := view{Lang: lang, Title: p.Sprintf(http.StatusText(status)), Path: r.URL.RequestURI(), D: text}
	if err := s.write(w, v, status, "error"); err != nil {
		s.log.Error("portal: error page", "err", err)
	}
}

// flashes are the confirmations a change's redirect may name (?done=KEY): a fixed list, so that no text of
// the URL is ever shown.
var flashes = map[string]string{
	"retry": "The message will be retried now.", "hold": "The message is held.", "release": "The message is released.",
	"delete": "The message was deleted.", "qrelease": "The message was released from quarantine.",
	"qdelete": "The quarantined message was deleted.", "suppressed": "The address is suppressed.",
	"unsuppressed": "The address was removed from the suppression list.", "opened": "The incident is open.",
	"comment": "Your comment was added.", "ack": "The incident is acknowledged.", "resolve": "The incident is resolved.",
	"confirm": "You confirmed the resolution.", "close": "The incident is closed.", "portal": "The customer's portal access changed.",
	"user": "The user was created.", "userdel": "The user was deleted.", "password": "Your password was changed; your other sessions were ended.",
	"totp": "The second factor is on.", "totpoff": "The second factor is off.",
}
