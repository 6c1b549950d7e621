package portal

import (
	"errors"
	"net/http"
	"strings"

	"easymail/internal/authz"
)

func init() {
	area([]string{"tokens"}, map[string]string{
		"API tokens": "Jetons d'API",
		"Tokens authenticate programs against the API (Authorization: Bearer). Only a hash is stored: a token's secret is shown once, when it is created.": "Les jetons authentifient les programmes auprès de l'API (Authorization: Bearer). Seule une empreinte est conservée : le secret d'un jeton n'est montré qu'une fois, à sa création.",
		"Token %s created. Its secret, shown only now; copy it:": "Jeton %s créé. Son secret, montré seulement maintenant ; copiez-le :",
		"Revoked":                    "Révoqué",
		"valid":                      "valide",
		"Revoke":                     "Révoquer",
		"No token.":                  "Aucun jeton.",
		"Create a token":             "Créer un jeton",
		"Customer (customer tokens)": "Client (jetons d'un client)",
		"The token is revoked.":      "Le jeton est révoqué.",
		"This is the last valid operator token; create another one first.": "C'est le dernier jeton d'opérateur valide ; créez-en d'abord un autre.",
		"Id": "Id",
	}, map[string]string{"tokrevoked": "The token is revoked."})
}

type tokensView struct {
	List      []authz.Token
	CanChange bool
	Roles     []string
	Customers []string
	// Secret is the secret of the token just created, shown in this answer only; Created its id.
	Secret, Created string
}

func (s *server) listTokens(r *http.Request, rc *reqCtx) (tokensView, error) {
	d := tokensView{CanChange: rc.operator(), Roles: []string{authz.RoleOperator, authz.RoleExpert, authz.RoleCustomer}}
	var err error
	if d.List, err = authz.List(r.Context(), s.o.DB); err != nil {
		return d, err
	}
	if d.CanChange {
		d.Customers, err = s.customerIDs(r.Context())
	}
	return d, err
}

// tokensPage lists the API tokens, revoked ones included; their secrets are never stored.
func (s *server) tokensPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	d, err := s.listTokens(r, rc)
	if err != nil {
		return err
	}
	return s.render(w, r, rc, http.StatusOK, "tokens", "tokens", "API tokens", d)
}

// createToken makes a token (operators) and shows its secret in this answer, the only time it is shown.
func (s *server) createToken(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	role := strings.TrimSpace(r.PostFormValue("role"))
	cust := ""
	if role == authz.RoleCustomer {
		cust = strings.TrimSpace(r.PostFormValue("customer"))
	}
	secret, t, err := authz.Create(r.Context(), s.o.DB, role, cust, r.PostFormValue("name"))
	if err != nil {
		return err
	}
	// The audit record names the token, never its secret.
	rc.auditCustomer, rc.auditDetail = t.CustomerID, map[string]string{"token": t.ID, "role": t.Role, "customer": t.CustomerID, "name": t.Name}
	d, err := s.listTokens(r, rc)
	if err != nil {
		return err
	}
	d.Secret, d.Created = secret, t.ID
	return s.render(w, r, rc, http.StatusCreated, "tokens", "tokens", "API tokens", d)
}

// revokeToken revokes a token (operators); the last valid operator token cannot be revoked.
func (s *server) revokeToken(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	list, err := authz.List(r.Context(), s.o.DB)
	if err != nil {
		return err
	}
	var tok *authz.Token
	for i := range list {
		if list[i].ID == id {
			tok = &list[i]
		}
	}
	if tok == nil {
		return errNotFound
	}
	switch err := authz.Revoke(r.Context(), s.o.DB, id); {
	case errors.Is(err, authz.ErrNotFound):
		return errNotFound
	case errors.Is(err, authz.ErrLastOperator):
		return errorf(http.StatusConflict, "This is the last valid operator token; create another one first.")
	case err != nil:
		return err
	}
	rc.auditCustomer, rc.auditDetail = tok.CustomerID, map[string]any{"token": tok.ID, "role": tok.Role, "name": tok.Name,
		"was_revoked": tok.RevokedAt != nil}
	return redirect(w, r, "/tokens?done=tokrevoked")
}
