package customer

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"easymail/internal/fielderr"
)

// checkFallback validates a fallback pool: "" (none) or a configured pool other than pool ("" when the
// primary pool is checked later, against the stored one).
func checkFallback(fallback, pool string, pools []string) (string, error) {
	fallback = strings.TrimSpace(fallback)
	if fallback == "" {
		return "", nil
	}
	found := false
	for _, p := range pools {
		found = found || p == fallback
	}
	if !found {
		return "", &fielderr.Error{Field: "fallback_pool", Msg: fmt.Sprintf("%q is not a configured pool (have: %s)",
			fallback, strings.Join(pools, ", "))}
	}
	if fallback == pool {
		return "", &fielderr.Error{Field: "fallback_pool", Msg: fmt.Sprintf("must differ from the pool (%q): a fallback is another group of IPs", pool)}
	}
	return fallback, nil
}

// checkPoolPair checks, inside tx after an update, that the customer's fallback pool differs from its pool.
// The error names fallback_pool when the update set it, else pool.
func checkPoolPair(ctx context.Context, tx *sql.Tx, id string, fallbackChanged bool) error {
	var pool, fallback string
	if err := tx.QueryRowContext(ctx, `SELECT pool, fallback_pool FROM customers WHERE id = ?`, id).Scan(&pool, &fallback); err != nil {
		return err
	}
	if fallback == "" || fallback != pool {
		return nil
	}
	if fallbackChanged {
		return &fielderr.Error{Field: "fallback_pool", Msg: fmt.Sprintf("must differ from the pool (%q): a fallback is another group of IPs", pool)}
	}
	return &fielderr.Error{Field: "pool", Msg: fmt.Sprintf("%q is the customer's fallback pool; change fallback_pool first", pool)}
}
