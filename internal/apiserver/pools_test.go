package apiserver

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/config"
	"easymail/internal/ippool"
	"easymail/internal/store"
)

// fakeChecker lists every IP it checks in one zone.
type fakeChecker struct{ pools *ippool.Pools }

func (c fakeChecker) CheckNow(ctx context.Context, addr netip.Addr) error {
	return c.pools.ApplyCheck(ctx, addr, ippool.CheckReport{At: time.Now(),
		Zones: []ippool.ZoneResult{{Zone: "bl.test", Listed: true, Code: "127.0.0.2"}}})
}

// newPoolEnv is newEnv's setup with the outbound IP pools behind the API.
func newPoolEnv(t *testing.T) *testEnv {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Pools = []config.Pool{
		{Name: "default", IPs: []config.PoolAddr{{Address: "127.0.0.1", HELO: "d.example.net"}}},
		{Name: "premium", IPs: []config.PoolAddr{{Address: "127.0.0.2", HELO: "p.example.net"}}},
	}
	pools, err := ippool.New(ctx, ippool.Options{Pools: cfg.Pools, IPPool: cfg.IPPool, Hold: time.Hour, Store: ippool.DBStore{DB: db}})
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{db: db, cfg: &cfg, queue: &fakeQueue{db: db}, tok: map[string]string{}}
	h, err := New(Options{DB: db, Config: &cfg, Queue: e.queue, Pools: pools, IPCheck: fakeChecker{pools}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	client := func(role, cust string) *api.Client {
		secret, _, err := authz.Create(ctx, db, role, cust, role+" "+cust)
		if err != nil {
			t.Fatal(err)
		}
		e.tok[role+cust] = secret
		return &api.Client{BaseURL: e.srv.URL, Token: secret, HTTP: e.srv.Client()}
	}
	e.op = client(authz.RoleOperator, "")
	e.expert = client(authz.RoleExpert, "")
	if e.custA, err = e.op.CreateCustomer(ctx, api.CustomerCreate{Name: "Acme", ContactEmail: "it@acme.example"}); err != nil {
		t.Fatal(err)
	}
	e.a = client(authz.RoleCustomer, e.custA.ID)
	e.tok["A"] = e.tok["customer"+e.custA.ID]
	e.tok["operator"], e.tok["expert"] = e.tok[authz.RoleOperator], e.tok[authz.RoleExpert]
	return e
}

func TestPoolEndpointsRoles(t *testing.T) {
	e := newPoolEnv(t)
	for _, c := range []struct {
		who, method, path, body string
		status                  int
	}{
		{"operator", "GET", "/api/v1/pools", "", 200},
		{"expert", "GET", "/api/v1/pools", "", 200},
		{"expert", "GET", "/api/v1/ips", "", 200},
		{"expert", "GET", "/api/v1/ips/127.0.0.1", "", 200},
		{"A", "GET", "/api/v1/pools", "", 403},
		{"A", "GET", "/api/v1/ips", "", 403},
		{"A", "GET", "/api/v1/ips/127.0.0.1", "", 403},
		{"A", "POST", "/api/v1/ips/127.0.0.1/pause", "", 403},
		{"expert", "POST", "/api/v1/pools/default/ips", `{"address":"127.0.0.9","helo":"x.example.net"}`, 403},
		{"expert", "DELETE", "/api/v1/pools/default/ips/127.0.0.1", "", 403},
		{"expert", "POST", "/api/v1/ips/127.0.0.1/drain", "", 403},
		{"expert", "POST", "/api/v1/ips/127.0.0.1/check", "", 403},
		{"", "GET", "/api/v1/ips", "", 401},
	} {
		if status, ae, _ := e.call(t, c.who, c.method, c.path, c.body); status != c.status {
			t.Errorf("%s %s %s: %d %+v, want %d", c.who, c.method, c.path, status, ae, c.status)
		}
	}
}

func TestPoolEndpointsBadInput(t *testing.T) {
	e := newPoolEnv(t)
	add := "/api/v1/pools/default/ips"
	for _, c := range []struct {
		method, path, body string
		status             int
		field              string
	}{
		{"POST", add, `{"address":5,"helo":"x.example.net"}`, 400, "address"},
		{"POST", add, `{"address":"127.0.0.9","helo":"x.example.net","extra":1}`, 400, "extra"},
		{"POST", add, `{`, 400, ""},
		{"POST", add, ``, 400, ""},
		{"POST", add, `[]`, 400, ""},
		{"POST", add, `{"address":"not-an-ip","helo":"x.example.net"}`, 422, "address"},
		{"POST", add, `{"helo":"x.example.net"}`, 422, "address"},
		{"POST", add, `{"address":"127.0.0.9"}`, 422, "helo"},
		{"POST", add, `{"address":"127.0.0.9","helo":"bad name"}`, 422, "helo"},
		{"POST", add, `{"address":"127.0.0.9","helo":"x.example.net","weight":-2}`, 422, "weight"},
		{"POST", add, `{"address":"127.0.0.9","helo":"x.example.net","weight":"3"}`, 400, "weight"},
		{"POST", add, `{"address":"127.0.0.9","helo":"x.example.net","weight":1.5}`, 400, "weight"},
		{"POST", add, `{"address":"127.0.0.9","helo":"x.example.net","warmup":[10,0]}`, 422, "warmup"},
		{"POST", add, `{"address":"127.0.0.9","helo":"x.example.net","warmup":"fast"}`, 400, "warmup"},
		{"POST", add, `{"address":"127.0.0.2","helo":"x.example.net"}`, 409, "address"},
		{"POST", "/api/v1/pools/gold/ips", `{"address":"127.0.0.9","helo":"x.example.net"}`, 404, ""},
		{"DELETE", "/api/v1/pools/default/ips/127.0.0.77", "", 404, ""},
		{"DELETE", "/api/v1/pools/premium/ips/127.0.0.1", "", 404, ""},
		{"DELETE", "/api/v1/pools/default/ips/nope", "", 404, "address"},
		{"POST", "/api/v1/ips/nope/drain", "", 404, "address"},
		{"POST", "/api/v1/ips/127.0.0.77/pause", "", 404, ""},
		{"POST", "/api/v1/ips/127.0.0.1/pause", `{"reason":5}`, 400, "reason"},
		{"POST", "/api/v1/ips/127.0.0.1/pause", `{"reason":"x","y":1}`, 400, "y"},
		{"POST", "/api/v1/ips/127.0.0.1/pause", `{"reason":"` + strings.Repeat("x", 400) + `"}`, 422, "reason"},
		{"POST", "/api/v1/ips/127.0.0.1/resume", `{"reason":"x"}`, 400, "reason"},
		{"POST", "/api/v1/ips/127.0.0.1/check", `{"reason":"x"}`, 400, "reason"},
		{"POST", "/api/v1/ips/127.0.0.1/explode", "", 404, ""},
		{"GET", "/api/v1/ips?pool=gold", "", 422, "pool"},
		{"GET", "/api/v1/ips?limit=1", "", 400, "limit"},
		{"GET", "/api/v1/pools?x=1", "", 400, "x"},
		{"GET", "/api/v1/ips/::zz", "", 404, "address"},
		{"POST", "/api/v1/customers", `{"name":"x","contact_email":"a@b.example","fallback_pool":"gold"}`, 422, "fallback_pool"},
		{"POST", "/api/v1/customers", `{"name":"x","contact_email":"a@b.example","fallback_pool":"default"}`, 422, "fallback_pool"},
		{"POST", "/api/v1/customers", `{"name":"x","contact_email":"a@b.example","fallback_pool":5}`, 400, "fallback_pool"},
		{"PATCH", "/api/v1/customers/" + e.custA.ID, `{"fallback_pool":"default"}`, 422, "fallback_pool"},
		{"PATCH", "/api/v1/customers/" + e.custA.ID, `{"fallback_pool":"gold"}`, 422, "fallback_pool"},
	} {
		status, ae, body := e.call(t, "operator", c.method, c.path, c.body)
		if status != c.status || ae.Field != c.field {
			t.Errorf("%s %s %.60s: %d field %q (%s), want %d field %q", c.method, c.path, c.body, status, ae.Field, body, c.status, c.field)
		}
	}
}

func TestPoolEndpointsManageIPsAndFallback(t *testing.T) {
	ctx := context.Background()
	e := newPoolEnv(t)
	pools, err := e.expert.ListPools(ctx)
	if err != nil || len(pools) != 2 || pools[0].Name != "default" || pools[0].Usable != 1 || pools[1].Addresses[0] != "127.0.0.2" {
		t.Fatalf("pools %+v %v", pools, err)
	}
	ip, err := e.op.AddIP(ctx, "premium", api.IPRequest{Address: "127.0.0.3", HELO: "p3.example.net", Weight: 5})
	if err != nil || ip.State != api.IPWarming || ip.Weight != 5 || ip.Warmup == nil || ip.Warmup.Cap != 50 || ip.Origin != "api" {
		t.Fatalf("add %+v %v", ip, err)
	}
	if ip, err = e.op.IPAction(ctx, "127.0.0.3", "drain", "moving to a new range"); err != nil || ip.State != api.IPDraining ||
		ip.Reason != "moving to a new range" {
		t.Fatalf("drain %+v %v", ip, err)
	}
	if ip, err = e.op.IPAction(ctx, "127.0.0.3", "resume", ""); err != nil || ip.State != api.IPWarming {
		t.Fatalf("resume %+v %v", ip, err)
	}
	if ip, err = e.op.IPAction(ctx, "127.0.0.3", "pause", ""); err != nil || ip.State != api.IPPaused {
		t.Fatalf("pause %+v %v", ip, err)
	}
	if ip, err = e.op.IPAction(ctx, "127.0.0.1", "check", ""); err != nil || ip.State != api.IPListed || len(ip.Listings) != 1 ||
		ip.LastCheck == nil {
		t.Fatalf("check %+v %v", ip, err)
	}
	list, err := e.expert.ListIPs(ctx, "premium")
	if err != nil || len(list) != 2 || list[1].Address != "127.0.0.3" {
		t.Fatalf("ip list %+v %v", list, err)
	}
	// The wire form names every field the contract shows.
	_, _, raw := e.call(t, "operator", "GET", "/api/v1/ips", "")
	var generic []map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil || len(generic) != 3 {
		t.Fatalf("GET /ips %s", raw)
	}
	for _, k := range []string{"address", "pool", "helo", "weight", "state", "reason", "listings", "last_check", "fcrdns", "last_24h",
		"paused_destinations", "check_errors"} {
		if _, ok := generic[0][k]; !ok {
			t.Errorf("GET /ips lacks %q: %v", k, generic[0])
		}
	}
	if err := e.op.RemoveIP(ctx, "premium", "127.0.0.3"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.op.GetIP(ctx, "127.0.0.3"); err == nil {
		t.Fatal("removed IP still listed")
	}

	c, err := e.op.CreateCustomer(ctx, api.CustomerCreate{Name: "Bolt", ContactEmail: "it@bolt.example", Pool: "premium", FallbackPool: "default"})
	if err != nil || c.FallbackPool != "default" {
		t.Fatalf("create with fallback %+v %v", c, err)
	}
	if got, _ := e.op.GetCustomer(ctx, c.ID); got.FallbackPool != "default" {
		t.Fatalf("get: fallback %q", got.FallbackPool)
	}
	// Making the pool the fallback is refused; swapping goes through "no fallback".
	if status, ae, _ := e.call(t, "operator", "PATCH", "/api/v1/customers/"+c.ID, `{"pool":"default"}`); status != 422 || ae.Field != "pool" {
		t.Fatalf("pool = fallback: %d %+v", status, ae)
	}
	none := ""
	if got, err := e.op.UpdateCustomer(ctx, c.ID, api.CustomerUpdate{FallbackPool: &none}); err != nil || got.FallbackPool != "" {
		t.Fatalf("clear fallback %+v %v", got, err)
	}
	def, prem := "default", "premium"
	if got, err := e.op.UpdateCustomer(ctx, c.ID, api.CustomerUpdate{Pool: &def, FallbackPool: &prem}); err != nil ||
		got.Pool != "default" || got.FallbackPool != "premium" {
		t.Fatalf("swap %+v %v", got, err)
	}
}
