package node_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"easymail/internal/config"
	"easymail/internal/node"
	"easymail/internal/testkit/testnode"
)

// apiStatus is the status of GET /api/v1/customers with token.
func apiStatus(t *testing.T, n *testnode.Node, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", n.APIURL+"/api/v1/customers", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAdminTokenEnvChange: restarting with a new EASYMAIL_ADMIN_TOKEN revokes the previous value.
func TestAdminTokenEnvChange(t *testing.T) {
	dir := t.TempDir()
	const first, second = "first-Zk3Wq8Lr5Nt2Vx9Bm4Hc7Jp6Df1Gs0", "second-Ty6Rb2Kx9Mw4Qn7Lc3Vz8Hp5Jf1Ds0"
	n := testnode.Start(t, testnode.Options{DataDir: dir, AdminToken: first})
	if code := apiStatus(t, n, first); code != 200 {
		t.Fatalf("first token: %d", code)
	}
	n.Stop(t)
	n = testnode.Start(t, testnode.Options{DataDir: dir, AdminToken: second})
	if code := apiStatus(t, n, second); code != 200 {
		t.Fatalf("new token: %d", code)
	}
	if code := apiStatus(t, n, first); code != http.StatusUnauthorized {
		t.Fatalf("the previous EASYMAIL_ADMIN_TOKEN after a restart with a new value: %d, want 401", code)
	}
}

// TestAdminTokenEnvWeak: the node refuses to start with a weak EASYMAIL_ADMIN_TOKEN, and says why.
func TestAdminTokenEnvWeak(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.NodeID = "weak-token-node" // as config.Load derives it from the host name
	smtpLn, apiLn := testnode.Listen(t), testnode.Listen(t)
	t.Setenv("EASYMAIL_ADMIN_TOKEN", "admin")
	// Were the node to start, it would stop at once and return nil.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := node.RunWith(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), cancel,
		node.Hooks{SMTPListeners: []net.Listener{smtpLn}, APIListener: apiLn})
	if err == nil || !strings.Contains(err.Error(), "EASYMAIL_ADMIN_TOKEN is too weak") || !strings.Contains(err.Error(), "5 characters") {
		t.Fatalf("start with EASYMAIL_ADMIN_TOKEN=admin: %v", err)
	}
}
