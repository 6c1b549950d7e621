package apiserver

import (
	"errors"
	"net/http"

	"easymail/internal/authz"
	"easymail/internal/portal/account"
)

// userRoutes registers the portal users' endpoints (docs/portal.md): operators create and delete them; staff
// list them all, a customer its own.
func (s *server) userRoutes(route func(string, access, apiHandler)) {
	route("POST /api/v1/users", operatorOnly, s.createUser)
	route("GET /api/v1/users", anyRole, s.listUsers)
	route("DELETE /api/v1/users/{id}", operatorOnly, s.deleteUser)
}

func (s *server) accounts() *account.Store { return &account.Store{DB: s.db} }

func (s *server) createUser(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var in account.NewUser
	if err := decode(w, r, &in); err != nil {
		return err
	}
	generated := ""
	if in.Password == "" {
		pw, err := account.GeneratePassword()
		if err != nil {
			return err
		}
		in.Password, generated = pw, pw
	}
	u, err := s.accounts().Create(r.Context(), in)
	if err != nil {
		return err
	}
	s.log.Info("portal: user created", "user", u.ID, "email", u.Email, "role", u.Role, "token", p.TokenID)
	u.Password = generated
	writeJSON(w, http.StatusCreated, u)
	return nil
}

func (s *server) listUsers(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	q, err := query(r, "customer")
	if err != nil {
		return err
	}
	cust, ok := scope(p, q.Get("customer"))
	if !ok {
		writeJSON(w, http.StatusOK, []account.User{})
		return nil
	}
	list, err := s.accounts().List(r.Context(), cust)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *server) deleteUser(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	err := s.accounts().Delete(r.Context(), r.PathValue("id"))
	if errors.Is(err, account.ErrNotFound) {
		return notFound("user", r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
