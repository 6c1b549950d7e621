package node_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"easymail/internal/config"
	"easymail/internal/testkit/testnode"
)

// rawGet sends a keep-alive GET on conn and reads its response.
func rawGet(t *testing.T, conn net.Conn, br *bufio.Reader, path string, wait time.Duration) (*http.Response, error) {
	t.Helper()
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: easymail\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(br, nil)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func dialAPI(t *testing.T, n *testnode.Node) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", n.Config.API.Listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReader(conn)
}

// TestAPIConnectionCap: with api.max_connections 2, a third client is not served while two connections are
// open, and is served as soon as one closes.
func TestAPIConnectionCap(t *testing.T) {
	n := testnode.Start(t, testnode.Options{Configure: func(c *config.Config) {
		c.API.MaxConnections = 2
		c.API.ReadHeaderTimeout, c.API.ReadTimeout, c.API.IdleTimeout = time.Minute, time.Minute, time.Minute
	}})
	c1, b1 := dialAPI(t, n)
	c2, b2 := dialAPI(t, n)
	for _, c := range []struct {
		conn net.Conn
		br   *bufio.Reader
	}{{c1, b1}, {c2, b2}} {
		if resp, err := rawGet(t, c.conn, c.br, "/healthz", 10*time.Second); err != nil || resp.StatusCode != 200 {
			t.Fatalf("first two connections: %v %v", resp, err)
		}
	}
	c3, b3 := dialAPI(t, n)
	resp, err := rawGet(t, c3, b3, "/healthz", 500*time.Millisecond)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("third connection over the cap was served: %v %v", resp, err)
	}
	// One closes: the waiting client is accepted and gets its answer (the request is already sent).
	c1.Close()
	c3.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err = http.ReadResponse(b3, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("third connection after one closed: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestAPIIdleTimeout: a keep-alive connection that sends no next request is closed after api.idle_timeout.
func TestAPIIdleTimeout(t *testing.T) {
	n := testnode.Start(t, testnode.Options{Configure: func(c *config.Config) {
		c.API.IdleTimeout = 200 * time.Millisecond
		c.API.ReadHeaderTimeout, c.API.ReadTimeout = time.Minute, time.Minute
	}})
	conn, br := dialAPI(t, n)
	if resp, err := rawGet(t, conn, br, "/healthz", 10*time.Second); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection not closed by the server within 5s of a 200ms idle timeout: %v", err)
	}
}

// TestAPIReadTimeout: a client that announces a body and never sends it does not hold its handler and
// connection beyond api.read_timeout.
func TestAPIReadTimeout(t *testing.T) {
	n := testnode.Start(t, testnode.Options{Configure: func(c *config.Config) {
		c.API.ReadTimeout = 300 * time.Millisecond
	}})
	conn, br := dialAPI(t, n)
	io.WriteString(conn, "POST /api/v1/customers HTTP/1.1\r\nHost: easymail\r\nAuthorization: Bearer "+n.Token+
		"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("a request whose body never comes still holds its connection after 10s (read timeout 300ms)")
	}
}

func getMetrics(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsToken: with metrics.token, /metrics (which names customers) answers 401 without the token or
// with a wrong one, and the series with it.
func TestMetricsToken(t *testing.T) {
	const token = "metrics-Tq8vX2kLp9RzW4mN"
	n := testnode.Start(t, testnode.Options{Configure: func(c *config.Config) { c.Metrics.Token = token }})
	for _, tok := range []string{"", "wrong-token-wrong-token", n.Token} {
		if code, body := getMetrics(t, n.MetricsURL, tok); code != http.StatusUnauthorized || strings.Contains(body, "easymail_") {
			t.Fatalf("metrics with token %q: %d %.200s", tok, code, body)
		}
	}
	if code, body := getMetrics(t, n.MetricsURL, token); code != 200 || !strings.Contains(body, "easymail_access_notices_total") {
		t.Fatalf("metrics with the token: %d %.200s", code, body)
	}
}

// TestMetricsListen: with metrics.listen, /metrics is served there and no longer on the API port, and the
// metrics listener serves nothing else.
func TestMetricsListen(t *testing.T) {
	n := testnode.Start(t, testnode.Options{Configure: func(c *config.Config) { c.Metrics.Listen = "127.0.0.1:0" }})
	if n.MetricsURL == n.APIURL {
		t.Fatal("no separate metrics listener")
	}
	if code, _ := getMetrics(t, n.APIURL, ""); code != http.StatusNotFound {
		t.Fatalf("/metrics on the API port: %d, want 404", code)
	}
	if code, body := getMetrics(t, n.MetricsURL, ""); code != 200 || !strings.Contains(body, "easymail_access_notices_total") {
		t.Fatalf("/metrics on metrics.listen: %d %.200s", code, body)
	}
	for _, path := range []string{"/healthz", "/api/v1/customers"} {
		resp, err := http.Get(n.MetricsURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s on the metrics listener: %d, want 404", path, resp.StatusCode)
		}
	}
}
