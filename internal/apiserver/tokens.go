package apiserver

import (
	"net/http"

	"easymail/internal/api"
	"easymail/internal/authz"
)

func (s *server) createToken(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	var in api.TokenRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	secret, t, err := authz.Create(r.Context(), s.db, in.Role, in.CustomerID, in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, api.NewToken{Token: t, Secret: secret})
	return nil
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	list, err := authz.List(r.Context(), s.db)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	if err := authz.Revoke(r.Context(), s.db, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
