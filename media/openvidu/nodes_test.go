package openvidu

import (
	"testing"

	"github.com/hearth-im/hearth/media/openvidu/ovtest"
)

// TestMediaNodes: sessions go to the least-loaded node; a node that is lost
// closes its sessions (mediaServerDisconnect) and new sessions go elsewhere.
func TestMediaNodes(t *testing.T) {
	e := startEnv(t, envOptions{nodes: 2})
	pipes := func(i int) int { return e.nodes[i].n.Load().Pipelines }

	a := ovtest.Dial(t, e.url, "alice")
	a.Join(e.token("s1", nil))
	a.Publish()
	b := ovtest.Dial(t, e.url, "bob")
	b.Join(e.token("s2", nil))
	if pipes(0) != 1 || pipes(1) != 1 {
		t.Fatalf("two sessions on nodes %d/%d, want one each", pipes(0), pipes(1))
	}
	first := 0
	if e.nodes[1].n.Load().Endpoints == 1 {
		first = 1 // Alice's session (with her publisher) is on node 1
	}
	e.hooks.Take(5)

	e.nodes[first].stop()
	ovtest.CheckSeq(t, e.hooks.TakeUntil("sessionDestroyed"), []string{
		"webrtcConnectionDestroyed(" + a.ID() + ",OUTBOUND,mediaServerDisconnect)",
		"participantLeft(" + a.ID() + ",mediaServerDisconnect)",
		"sessionDestroyed(mediaServerDisconnect)",
	})
	a.WaitNote("participantEvicted", "connectionId", a.ID(), "reason", "mediaServerDisconnect")

	c := ovtest.Dial(t, e.url, "carol")
	c.Join(e.token("s3", nil))
	if p := pipes(1 - first); p != 2 {
		t.Errorf("the surviving node has %d pipelines, want 2", p)
	}
	st := e.srv.MediaNodes()
	if st[first].Up || !st[1-first].Up {
		t.Errorf("node status %+v", st)
	}
}
