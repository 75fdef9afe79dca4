package time_test

import (
	"regexp"
	"testing"

	"github.com/hearth-im/hearth/plugins/plugintest"
	xtime "github.com/hearth-im/hearth/plugins/time"
	"github.com/hearth-im/hearth/server/servertest"
)

func TestTime(t *testing.T) {
	e, _ := plugintest.Start(t, servertest.Options{}, xtime.Plugin())
	e.AddUser("alice", "pw")
	a := e.Login("alice", "pw", "a")
	r := a.IQ("<iq type='get' id='t' to='localhost'><time xmlns='urn:xmpp:time'/></iq>", "t")
	if !regexp.MustCompile(`<tzo>[+-]\d\d:\d\d</tzo><utc>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z</utc>`).MatchString(r.Raw) {
		t.Fatalf("time: %s", r.Raw)
	}
}
