// Package plugintest starts a real hearth core with a set of plugins for
// tests: servertest's loopback server plus a plugins.Manager, as cmd/hearth
// wires them.
package plugintest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/server/servertest"
	"github.com/hearth-im/hearth/storage"
)

// Start runs a core with infos registered (and enabled unless Info.Disabled).
func Start(t testing.TB, o servertest.Options, infos ...plugins.Info) (*servertest.Env, *plugins.Manager) {
	t.Helper()
	var mgr *plugins.Manager
	define, setup := o.Define, o.Setup
	o.Define = func(p *storage.Props) {
		plugins.Define(p, infos)
		if define != nil {
			define(p)
		}
	}
	o.Setup = func(e *servertest.Env) {
		// The caller's setup first: it builds what plugins depend on (the
		// presence engine), as cmd/hearth does before starting plugins.
		if setup != nil {
			setup(e)
		}
		var err error
		mgr, err = plugins.NewManager(e.Srv, e.DB, slog.New(slog.NewTextHandler(io.Discard, nil)), infos)
		if err != nil {
			t.Fatal(err)
		}
		if err := mgr.Start(); err != nil {
			t.Fatal(err)
		}
		e.OnStop(func() { mgr.Stop(context.Background()) })
	}
	return servertest.Start(t, o), mgr
}
