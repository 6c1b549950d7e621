package node_test

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestRelayHostByName registers a customer by the host name of its MTA: the name's addresses may relay,
// and a changed customer status applies to open sessions.
func TestRelayHostByName(t *testing.T) {
	e := newEnv(t, nil)
	mx := e.mx(t, "dest.test", 11)
	e.dns.AddA("mta.beta.test", "127.0.0.5")
	var c struct {
		ID string `json:"id"`
	}
	e.n.API(t, "POST", "/customers", map[string]string{"name": "Beta", "contact_email": "it@beta.test", "pool": "default"}, 201, &c)
	e.n.API(t, "POST", "/customers/"+c.ID+"/domains", map[string]string{"domain": "beta.test"}, 201, nil)
	e.n.API(t, "POST", "/customers/"+c.ID+"/relay-hosts", map[string]string{"host": "mta.beta.test"}, 201, nil)

	if _, err := send(t, e.n.SMTPAddr, "127.0.0.5", "ann@beta.test", []string{"bob@dest.test"},
		message("ann@beta.test", "bob@dest.test", "by relay host")); err != nil {
		t.Fatal(err)
	}
	mx.WaitMessages(t, 1, 10*time.Second)

	// Acme's domain is not Beta's, even from a registered host.
	_, err := send(t, e.n.SMTPAddr, "127.0.0.5", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", "wrong customer"))
	wantCode(t, err, 550, "5.7.1")

	// Removing the relay host closes the door at the next connection.
	var full struct {
		RelayHosts []struct {
			ID string `json:"id"`
		} `json:"relay_hosts"`
	}
	e.n.API(t, "GET", "/customers/"+c.ID, nil, 200, &full)
	e.n.API(t, "DELETE", "/customers/"+c.ID+"/relay-hosts/"+full.RelayHosts[0].ID, nil, 204, nil)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}}
	conn, err := d.Dial("tcp", e.n.SMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	n, _ := conn.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "554 5.7.1") {
		t.Fatalf("greeting after removal %q", buf[:n])
	}
}
