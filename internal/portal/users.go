package portal

import (
	"errors"
	"html/template"
	"net/http"

	"easymail/internal/portal/account"
)

type usersView struct {
	List []account.User
	// CanEdit: operators (every user) and customers' users (their customer's); Roles those they may create.
	CanEdit   bool
	Roles     []string
	Customers []string
	// Password is the one-time password of the user just created.
	Password string
	Created  string
}

func (s *server) listUsers(r *http.Request, rc *reqCtx) (usersView, error) {
	d := usersView{CanEdit: rc.operator() || !rc.staff()}
	cust := ""
	if !rc.staff() {
		cust = rc.user().CustomerID
		d.Roles = []string{account.RoleCustomer}
	} else {
		d.Roles = []string{account.RoleOperator, account.RoleExpert, account.RoleCustomer}
		var err error
		if d.Customers, err = s.customerIDs(r.Context()); err != nil {
			return d, err
		}
	}
	var err error
	d.List, err = s.accounts.List(r.Context(), cust)
	return d, err
}

func (s *server) users(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	// The page lists a customer's user's own customer's users whatever the query says; asking for another
	// customer's is 404, as on the other pages.
	if _, ok := rc.scope(r.URL.Query().Get("customer")); !ok {
		return errNotFound
	}
	d, err := s.listUsers(r, rc)
	if err != nil {
		return err
	}
	return s.render(w, r, rc, http.StatusOK, "users", "users", "Users", d)
}

// addUser creates a user with a one-time password shown once. Operators create any user; a customer's
// user creates users of its own customer only; experts none.
func (s *server) addUser(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	in := account.NewUser{Email: r.PostFormValue("email"), Role: r.PostFormValue("role"), CustomerID: r.PostFormValue("customer")}
	switch {
	case rc.operator():
	case rc.staff():
		return errorf(http.StatusForbidden, "Your role may not change anything.")
	default:
		if account.NormalizeRole(in.Role) != account.RoleCustomer || (in.CustomerID != "" && in.CustomerID != rc.user().CustomerID) {
			return errNotFound
		}
		in.CustomerID = rc.user().CustomerID
	}
	if in.Role != account.RoleCustomer && account.NormalizeRole(in.Role) != account.RoleCustomer {
		in.CustomerID = ""
	}
	pw, err := account.GeneratePassword()
	if err != nil {
		return err
	}
	in.Password = pw
	u, err := s.accounts.Create(r.Context(), in)
	if err != nil {
		return err
	}
	rc.auditCustomer, rc.auditDetail = u.CustomerID, map[string]string{"user": u.ID, "email": u.Email, "role": u.Role}
	d, err := s.listUsers(r, rc)
	if err != nil {
		return err
	}
	d.Password, d.Created = pw, u.Email
	// Shown once, in this answer to the POST; never in a URL or a log.
	return s.render(w, r, rc, http.StatusCreated, "users", "users", "Users", d)
}

func (s *server) deleteUser(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	u, err := s.accounts.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	switch {
	case rc.operator():
	case rc.staff():
		return errorf(http.StatusForbidden, "Your role may not change anything.")
	case u.CustomerID != rc.user().CustomerID:
		return errNotFound
	}
	if u.ID == rc.user().ID {
		return errorf(http.StatusConflict, "You cannot delete yourself.")
	}
	if err := s.accounts.Delete(r.Context(), u.ID); err != nil {
		return err
	}
	rc.auditCustomer, rc.auditDetail = u.CustomerID, map[string]string{"user": u.ID, "email": u.Email}
	return redirect(w, r, "/users?done=userdel")
}

type accountView struct {
	// Secret and URI are a new TOTP secret to enrol; QR is URI as a QR code (inline SVG).
	Secret, URI string
	QR          template.HTML
}

func (s *server) accountPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	d := accountView{}
	if !rc.user().TOTP {
		secret, err := account.NewTOTPSecret()
		if err != nil {
			return err
		}
		d.Secret, d.URI = secret, account.TOTPURI("Easymail "+s.o.Config.Hostname, rc.user().Email, secret)
		d.QR = qrSVG(d.URI, rc.p.Sprintf("QR code of the secret, for your authenticator app"))
	}
	return s.render(w, r, rc, http.StatusOK, "account", "account", "Your account", d)
}

func (s *server) changePassword(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if _, err := s.accounts.Login(r.Context(), rc.user().Email, r.PostFormValue("current"), ""); err != nil &&
		!errors.Is(err, account.ErrCodeRequired) {
		return errorf(http.StatusForbidden, "The current password is wrong.")
	}
	if r.PostFormValue("new") != r.PostFormValue("repeat") {
		return errorf(http.StatusUnprocessableEntity, "The two new passwords differ.")
	}
	if err := s.accounts.SetPassword(r.Context(), rc.user().ID, r.PostFormValue("new"), rc.sess.ID); err != nil {
		return err
	}
	rc.auditDetail = map[string]string{"user": rc.user().ID, "change": "password"}
	return redirect(w, r, "/account?done=password")
}

func (s *server) enableTOTP(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := s.accounts.EnableTOTP(r.Context(), rc.user().ID, r.PostFormValue("secret"), r.PostFormValue("code")); err != nil {
		return err
	}
	rc.auditDetail = map[string]string{"user": rc.user().ID, "change": "totp on"}
	return redirect(w, r, "/account?done=totp")
}

func (s *server) disableTOTP(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := s.accounts.DisableTOTP(r.Context(), rc.user().ID); err != nil {
		return err
	}
	rc.auditDetail = map[string]string{"user": rc.user().ID, "change": "totp off"}
	return redirect(w, r, "/account?done=totpoff")
}
