package config

import "time"

// Portal is the web portal: the operator's and experts' console and the customers' self-service pages
// (docs/portal.md).
type Portal struct {
	// Listen is a separate address for the portal; "" serves it at / of api.listen, next to /api/v1.
	// Default: "".
	Listen string `yaml:"listen"`
	// SecureCookies marks the session cookies Secure (sent over HTTPS only). Turn it off only for a lab
	// served over plain HTTP. Default: true.
	SecureCookies bool `yaml:"secure_cookies"`
	// SessionLifetime is how long a session lasts at most; IdleTimeout ends it earlier after that long
	// without a request. Defaults: 12h and 1h.
	SessionLifetime time.Duration `yaml:"session_lifetime"`
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	// LoginAttempts is the failed logins allowed per account in LoginWindow, IPLoginAttempts those per client
	// address; further attempts are refused until the window has passed. Defaults: 5, 20 and 15m.
	LoginAttempts   int           `yaml:"login_attempts"`
	IPLoginAttempts int           `yaml:"ip_login_attempts"`
	LoginWindow     time.Duration `yaml:"login_window"`
}

// DefaultPortal returns the default portal settings.
func DefaultPortal() Portal {
	return Portal{SecureCookies: true, SessionLifetime: 12 * time.Hour, IdleTimeout: time.Hour, LoginAttempts: 5,
		IPLoginAttempts: 20, LoginWindow: 15 * time.Minute}
}

// validatePortal checks the portal section.
func (c *Config) validatePortal() error {
	bad := func(key, msg string) error { return &KeyError{Key: key, Msg: msg} }
	p := c.Portal
	if p.Listen != "" {
		if err := checkListen("portal.listen", p.Listen); err != nil {
			return err
		}
		if p.Listen == c.API.Listen {
			return bad("portal.listen", "must differ from api.listen (leave it empty to serve the portal on api.listen)")
		}
	}
	switch {
	case p.SessionLifetime < time.Minute:
		return bad("portal.session_lifetime", "must be at least 1m")
	case p.IdleTimeout < time.Minute || p.IdleTimeout > p.SessionLifetime:
		return bad("portal.idle_timeout", "must be at least 1m and at most portal.session_lifetime")
	case p.LoginAttempts < 1:
		return bad("portal.login_attempts", "must be at least 1")
	case p.IPLoginAttempts < 1:
		return bad("portal.ip_login_attempts", "must be at least 1")
	case p.LoginWindow < time.Minute:
		return bad("portal.login_window", "must be at least 1m")
	}
	return nil
}
