package extdisco_test

import (
	"encoding/xml"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hearth-im/hearth/media/turn"
	"github.com/hearth-im/hearth/plugins/extdisco"
	"github.com/hearth-im/hearth/plugins/plugintest"
	"github.com/hearth-im/hearth/server/servertest"
	pionturn "github.com/pion/turn/v5"
)

// The services answer carries credentials that the real embedded TURN server
// accepts: a pion TURN client allocates with them.
func TestServicesWithWorkingCredentials(t *testing.T) {
	ts, err := turn.New(turn.Config{Addr: "127.0.0.1:0", Realm: "localhost",
		Secret: func() string { return "s3cret" }, TTL: func() time.Duration { return time.Hour }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close() })
	udp, tcp := ts.Addr()
	src := extdisco.Source{
		Services: func() []extdisco.Service {
			return []extdisco.Service{
				{Type: "stun", Host: "127.0.0.1", Port: udp.(*net.UDPAddr).Port, Transport: "udp"},
				{Type: "turn", Host: "127.0.0.1", Port: udp.(*net.UDPAddr).Port, Transport: "udp"},
				{Type: "turn", Host: "127.0.0.1", Port: tcp.(*net.TCPAddr).Port, Transport: "tcp"},
			}
		},
		Credentials: func(user string) (string, string, time.Time) {
			c := ts.Credentials(user)
			return c.Username, c.Password, c.Expires
		},
	}
	e, _ := plugintest.Start(t, servertest.Options{}, extdisco.Plugin(src))
	e.AddUser("alice", "pw")
	a := e.Login("alice", "pw", "a")
	r := a.IQ("<iq type='get' id='e1' to='localhost'><services xmlns='urn:xmpp:extdisco:2'/></iq>", "e1")
	var res struct {
		Services []struct {
			Type      string `xml:"type,attr"`
			Host      string `xml:"host,attr"`
			Port      int    `xml:"port,attr"`
			Transport string `xml:"transport,attr"`
			Username  string `xml:"username,attr"`
			Password  string `xml:"password,attr"`
			Expires   string `xml:"expires,attr"`
		} `xml:"services>service"`
	}
	if err := xml.Unmarshal([]byte(r.Raw), &res); err != nil || len(res.Services) != 3 {
		t.Fatalf("services: %v %s", err, r.Raw)
	}
	turnUDP := res.Services[1]
	if turnUDP.Type != "turn" || turnUDP.Username == "" || turnUDP.Password == "" {
		t.Fatalf("turn service: %+v", turnUDP)
	}
	if _, err := time.Parse(time.RFC3339, turnUDP.Expires); err != nil {
		t.Fatalf("expires %q: %v", turnUDP.Expires, err)
	}
	if u := turnUDP.Username; u[len(u)-len("alice@localhost"):] != "alice@localhost" {
		t.Fatalf("username %q not for the requester's bare JID", u)
	}
	if res.Services[0].Username != "" {
		t.Fatalf("stun carries credentials: %+v", res.Services[0])
	}
	// Allocate through the real server with what XEP-0215 gave us.
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	addr := net.JoinHostPort(turnUDP.Host, strconv.Itoa(turnUDP.Port))
	c, err := pionturn.NewClient(&pionturn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Conn: conn,
		Username: turnUDP.Username, Password: turnUDP.Password, RTO: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate with XEP-0215 credentials: %v", err)
	}
	relay.Close()
	// The type filter.
	r = a.IQ("<iq type='get' id='e2' to='localhost'><services xmlns='urn:xmpp:extdisco:2' type='stun'/></iq>", "e2")
	res.Services = nil
	xml.Unmarshal([]byte(r.Raw), &res)
	if len(res.Services) != 1 || res.Services[0].Type != "stun" {
		t.Fatalf("filtered: %s", r.Raw)
	}
	// Advertised in the server's features (Conversations only asks then).
	if got := e.Srv.Features(0); len(got) == 0 || got[0] != extdisco.NS {
		t.Fatalf("features %v", got)
	}
}
