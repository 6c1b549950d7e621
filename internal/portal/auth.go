package portal

import (
	"crypto/subtle"
	"errors"
	"math"
	"net/http"
	"strings"

	"easymail/internal/portal/account"
)

// loginView is the login form's data.
type loginView struct {
	CSRF  string
	Email string
	Error string
	// Code asks for the TOTP code.
	Code bool
}

func (s *server) loginForm(w http.ResponseWriter, r *http.Request) {
	secure(w)
	w.Header().Set("Cache-Control", "no-store")
	lang := s.langOf(r)
	if c, err := r.Cookie(sessionCookie); err == nil {
		if _, err := s.accounts.Session(r.Context(), c.Value, s.cfg.IdleTimeout); err == nil {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
	}
	s.showLogin(w, r, lang, http.StatusOK, loginView{})
}

// showLogin renders the login form with a fresh double-submit CSRF token: the same random value in a cookie
// and in the form's hidden field.
func (s *server) showLogin(w http.ResponseWriter, r *http.Request, lang string, status int, lv loginView) {
	tok, err := account.RandomToken()
	if err != nil {
		s.fail(w, r, lang, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/login", MaxAge: 3600, HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	lv.CSRF = tok
	p := printer(lang)
	if lv.Error != "" {
		lv.Error = p.Sprintf(lv.Error)
	}
	v := view{Lang: lang, Title: p.Sprintf("Log in"), Path: r.URL.RequestURI(), D: lv}
	if err := s.write(w, v, status, "login"); err != nil {
		s.log.Error("portal: login page", "err", err)
	}
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	secure(w)
	w.Header().Set("Cache-Control", "no-store")
	lang := s.langOf(r)
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, lang, http.StatusBadRequest, "Malformed form.")
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameOrigin(r) || c.Value == "" ||
		subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		s.errorPage(w, r, lang, http.StatusForbidden, "Refused: the form's CSRF token is missing or wrong. Reload the page and try again.")
		return
	}
	email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
	lv := loginView{Email: email}
	acctKey, ipKey := "account:"+email, "ip:"+clientIP(r)
	for _, th := range []struct {
		t   *account.Throttle
		key string
	}{{s.acctThrottle, acctKey}, {s.ipThrottle, ipKey}} {
		if ok, wait := th.t.Allowed(th.key); !ok {
			w.Header().Set("Retry-After", itoa(int(math.Ceil(wait.Seconds()))))
			lv.Error = "Too many failed logins: try again later."
			s.showLogin(w, r, lang, http.StatusTooManyRequests, lv)
			return
		}
	}
	u, err := s.accounts.Login(r.Context(), email, r.PostFormValue("password"), r.PostFormValue("code"))
	switch {
	case errors.Is(err, account.ErrBadCredentials):
		s.acctThrottle.Fail(acctKey)
		s.ipThrottle.Fail(ipKey)
		s.log.Warn("portal: failed login", "email", email, "client", clientIP(r))
		lv.Error = "Wrong e-mail address or password."
		s.showLogin(w, r, lang, http.StatusUnauthorized, lv)
		return
	case errors.Is(err, account.ErrCodeRequired):
		s.acctThrottle.Fail(acctKey)
		s.ipThrottle.Fail(ipKey)
		lv.Error, lv.Code = "Enter the current code of your authenticator app.", true
		s.showLogin(w, r, lang, http.StatusUnauthorized, lv)
		return
	case errors.Is(err, account.ErrPortalDisabled):
		lv.Error = "The portal is not enabled for your organisation yet; ask your provider."
		s.showLogin(w, r, lang, http.StatusForbidden, lv)
		return
	case err != nil:
		s.fail(w, r, lang, err)
		return
	}
	s.acctThrottle.Reset(acctKey)
	secret, _, err := s.accounts.NewSession(r.Context(), u, s.cfg.SessionLifetime)
	if err != nil {
		s.fail(w, r, lang, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/", MaxAge: int(s.cfg.SessionLifetime.Seconds()),
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1, HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	s.audit(r, nil, *u, http.StatusSeeOther)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *server) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
}

func (s *server) logout(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	c, _ := r.Cookie(sessionCookie)
	if err := s.accounts.EndSession(r.Context(), c.Value); err != nil {
		return err
	}
	s.clearSession(w)
	return redirect(w, r, "/login")
}

func (s *server) logoutAll(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	n, err := s.accounts.EndAll(r.Context(), rc.user().ID)
	if err != nil {
		return err
	}
	rc.auditDetail = map[string]int64{"sessions_ended": n}
	s.clearSession(w)
	return redirect(w, r, "/login")
}
