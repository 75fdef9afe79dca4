package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/hearth-im/hearth/media"
	"github.com/hearth-im/hearth/media/openvidu/ovtest"
)

// The video gateway is wired: its REST API answers on --http with the generated
// secret, its tokens point at --http and carry the embedded TURN server's
// credentials, and a join activates the session on the embedded media node.
func TestVideoWired(t *testing.T) {
	a := startApp(t)
	base := "http://" + a.addrs["http"].String()
	secret := a.db.Props().Get(media.PropSecret)
	post := func(path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/openvidu/api"+path, strings.NewReader(body))
		req.SetBasicAuth("OPENVIDUAPP", secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&m) != nil {
			t.Fatalf("POST %s: %s", path, resp.Status)
		}
		return m
	}
	if secret == "" {
		t.Fatal("no generated openvidu.secret")
	}
	post("/sessions", `{"customSessionId":"wired"}`)
	tok := post("/sessions/wired/connection", `{}`)["token"].(string)
	if !strings.HasPrefix(tok, "ws://"+a.addrs["http"].String()+"?sessionId=wired&token=tok_") || !strings.Contains(tok, "&turnUsername=") {
		t.Fatalf("token %s", tok)
	}
	b := ovtest.Dial(t, base, "wired")
	b.Join(tok)
	b.Publish()
	waitUntil(t, "pipeline and endpoint on the embedded node", func() bool {
		l := a.node.Load()
		return l.Pipelines == 1 && l.Endpoints == 1
	})
}
