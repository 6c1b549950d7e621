// Package authz is API authentication and authorisation: bearer tokens (random secrets of which only the
// SHA-256 hash is stored), the three roles, and the first operator token created at first start.
//
// Roles: an operator may do everything; an expert may read everything and change nothing; a customer may
// read its own customer's data only.
package authz

// Role is a token's role.
type Role = string

// Principal is the authenticated caller: the token used, its role and, for the customer role, its customer.
type Principal struct {
	TokenID    string
	Role       Role
	CustomerID string
}

// CanWrite reports whether the principal may change anything: only operators may.
func (p Principal) CanWrite() bool { return p.Role == RoleOperator }

// CanRead reports whether the principal may read the data of the given customer.
func (p Principal) CanRead(customerID string) bool {
	switch p.Role {
	case RoleOperator, RoleExpert:
		return true
	case RoleCustomer:
		return p.CustomerID != "" && p.CustomerID == customerID
	}
	return false
}

// Scoped reports whether the principal sees one customer only, and which.
func (p Principal) Scoped() (customerID string, ok bool) {
	if p.Role == RoleCustomer {
		return p.CustomerID, true
	}
	return "", false
}
