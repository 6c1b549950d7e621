package smtpin

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSelfSignedFollowsHostname: the generated certificate names the configured host name; after the host
// name changes it is generated again, and otherwise kept.
func TestSelfSignedFollowsHostname(t *testing.T) {
	dir := t.TempDir()
	leaf := func(host string) (name string, serial string) {
		t.Helper()
		conf, err := TLSConfig("", "", dir, host)
		if err != nil {
			t.Fatal(err)
		}
		l := conf.Certificates[0].Leaf
		return l.DNSNames[0], l.SerialNumber.String()
	}
	name, first := leaf("vm")
	if name != "vm" {
		t.Fatalf("certificate for %q", name)
	}
	if _, again := leaf("vm"); again != first {
		t.Fatal("the kept certificate was generated again")
	}
	name, second := leaf("relay.example.net")
	if name != "relay.example.net" || second == first {
		t.Fatalf("after the host name changed: certificate for %q (serial changed: %v)", name, second != first)
	}
	// A broken pair (a crash between the two writes) is generated again rather than stopping the node.
	if err := os.WriteFile(filepath.Join(dir, "smtp-key.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if name, _ := leaf("relay.example.net"); name != "relay.example.net" {
		t.Fatalf("after a broken key: certificate for %q", name)
	}
}
