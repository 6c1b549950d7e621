package portal

import (
	"net/http"
	"sync"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

// languages are the portal's languages; the English strings are the catalogue's keys.
var languages = map[string]language.Tag{"en": language.English, "fr": language.French}

var matcher = language.NewMatcher([]language.Tag{language.English, language.French})

// area registers a part of the portal kept in its own files: its pages (templates/<name>.html), the French
// translations of its strings and its confirmations (?done=KEY). Each area's file calls it from init, so
// that the parts need not share one list.
func area(pages []string, fr, confirmations map[string]string) {
	pageNames = append(pageNames, pages...)
	for k, v := range fr {
		french[k] = v
	}
	for k, v := range confirmations {
		flashes[k] = v
	}
}

// printers are built on first use, after every area's init has added its strings.
var printers = sync.OnceValue(func() map[string]*message.Printer {
	b := catalog.NewBuilder(catalog.Fallback(language.English))
	for k, v := range french {
		if err := b.SetString(language.French, k, v); err != nil {
			panic(err)
		}
	}
	m := map[string]*message.Printer{}
	for k, tag := range languages {
		m[k] = message.NewPrinter(tag, message.Catalog(b))
	}
	return m
})

func printer(lang string) *message.Printer {
	if p, ok := printers()[lang]; ok {
		return p
	}
	return printers()["en"]
}

// langOf is the language of a request: the switch's cookie, else Accept-Language, else English.
func (s *server) langOf(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil {
		if _, ok := languages[c.Value]; ok {
			return c.Value
		}
	}
	tags, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if len(tags) == 0 {
		return "en"
	}
	_, i, conf := matcher.Match(tags...)
	if conf == language.No {
		return "en"
	}
	if i == 1 {
		return "fr"
	}
	return "en"
}
