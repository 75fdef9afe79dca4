package storage

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPropsDefaultsAndTypes(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	p := db.Props()
	if p != db.Props() {
		t.Error("Props() is not one shared instance")
	}
	p.Define(testPropDefs()...)

	if got := p.Get("test.name"); got != "hearth" {
		t.Errorf("default: %q", got)
	}
	if p.Bool("test.flag") || p.Int("test.count") != 1000 || p.Duration("test.timeout") != 6*time.Minute {
		t.Errorf("typed defaults: %v %d %v", p.Bool("test.flag"), p.Int("test.count"), p.Duration("test.timeout"))
	}
	if got := p.Get("no.such.key"); got != "" {
		t.Errorf("undefined key reads %q, want \"\"", got)
	}
	if p.Bool("no.such.key") || p.Int("no.such.key") != 0 || p.Duration("no.such.key") != 0 {
		t.Error("typed reads of an undefined key are not zero")
	}

	for _, kv := range [][2]string{{"test.flag", "true"}, {"test.count", "5"}, {"test.timeout", "0"}, {"test.name", "x y"}} {
		if err := p.Set(ctx, kv[0], kv[1]); err != nil {
			t.Fatalf("Set(%s, %s): %v", kv[0], kv[1], err)
		}
	}
	if !p.Bool("test.flag") || p.Int("test.count") != 5 || p.Duration("test.timeout") != 0 || p.Get("test.name") != "x y" {
		t.Errorf("after Set: %v %d %v %q", p.Bool("test.flag"), p.Int("test.count"), p.Duration("test.timeout"), p.Get("test.name"))
	}
	if err := p.Unset(ctx, "test.count"); err != nil {
		t.Fatal(err)
	}
	if p.Int("test.count") != 1000 {
		t.Errorf("after Unset: %d, want the default 1000", p.Int("test.count"))
	}
}

func TestPropsRejects(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	p := db.Props()
	p.Define(testPropDefs()...)

	err := p.Set(ctx, "no.such.key", "1")
	if !errors.Is(err, ErrUnknownProperty) || !strings.Contains(err.Error(), "no.such.key") {
		t.Errorf("Set(undefined): %v, want ErrUnknownProperty naming the key", err)
	}
	if err := p.Unset(ctx, "no.such.key"); !errors.Is(err, ErrUnknownProperty) {
		t.Errorf("Unset(undefined): %v", err)
	}
	for _, kv := range [][2]string{{"test.flag", "maybe"}, {"test.count", "-1"}, {"test.count", "ten"}, {"test.timeout", "5 minutes"}, {"test.timeout", "-1s"}} {
		err := p.Set(ctx, kv[0], kv[1])
		if err == nil || !strings.Contains(err.Error(), kv[0]) || !strings.Contains(err.Error(), kv[1]) {
			t.Errorf("Set(%s, %q): %v, want Check's error naming key and value", kv[0], kv[1], err)
		}
	}
	if p.Bool("test.flag") || p.Int("test.count") != 1000 {
		t.Error("a rejected value was stored")
	}
	var n int
	if err := db.Reader().QueryRow(`SELECT count(*) FROM properties`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows stored by rejected writes (%v)", n, err)
	}

	mustPanic := func(name string, defs ...PropDef) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: Define did not panic", name)
			}
		}()
		p.Define(defs...)
	}
	mustPanic("duplicate", PropDef{Key: "test.flag"})
	mustPanic("empty key", PropDef{})
	mustPanic("bad default", PropDef{Key: "bad.default", Default: "soon", Check: CheckDuration})
}

func TestPropsPersistAndInvalidStoredValue(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hearth.db")
	db := openTest(t, path)
	db.Props().Define(testPropDefs()...)
	if err := db.Props().Set(ctx, "test.count", "7"); err != nil {
		t.Fatal(err)
	}
	// A value written by some other version that this version's Check refuses, and a
	// property no code here defines (a plugin not loaded).
	if _, err := db.Writer().Exec(`INSERT INTO properties (key, value) VALUES ('test.timeout', 'soon'), ('plugin.x', 'kept')`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openTest(t, path)
	p := db.Props()
	p.Define(testPropDefs()...)
	if p.Int("test.count") != 7 {
		t.Errorf("test.count = %d after reopen, want 7", p.Int("test.count"))
	}
	if got := p.Get("test.timeout"); got != "6m" {
		t.Errorf("invalid stored value reads %q, want the default 6m", got)
	}
	if got := p.Get("plugin.x"); got != "" {
		t.Errorf("undefined stored key reads %q before Define", got)
	}
	p.Define(PropDef{Key: "plugin.x", Default: "d"})
	if got := p.Get("plugin.x"); got != "kept" {
		t.Errorf("a plugin defining its key late reads %q, want the stored kept", got)
	}
}

func TestPropsList(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	p := db.Props()
	p.Define(testPropDefs()...)
	p.Define(PropDef{Key: "a.secret", Secret: true, Generate: func() string { return "s3cr3t" }, Help: "generated"})
	if err := p.Set(ctx, "test.flag", "true"); err != nil {
		t.Fatal(err)
	}
	list := p.List()
	var keys []string
	byKey := map[string]PropValue{}
	for _, pv := range list {
		keys = append(keys, pv.Key)
		byKey[pv.Key] = pv
	}
	want := []string{"a.secret", "other.thing", "sentinel", "test.count", "test.flag", "test.name", "test.timeout"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("List keys %v, want %v", keys, want)
	}
	if pv := byKey["test.flag"]; pv.Value != "true" || !pv.IsSet || pv.Default != "false" || pv.Help != "a boolean" {
		t.Errorf("test.flag: %+v", pv)
	}
	if pv := byKey["test.count"]; pv.Value != "1000" || pv.IsSet {
		t.Errorf("test.count: %+v", pv)
	}
	if pv := byKey["a.secret"]; pv.Value != Masked || pv.IsSet {
		t.Errorf("secret in List: value %q IsSet %v, want masked and not set", pv.Value, pv.IsSet)
	}
	for _, pv := range p.ListUnmasked() {
		if pv.Key == "a.secret" && pv.Value != "s3cr3t" {
			t.Errorf("ListUnmasked shows %q", pv.Value)
		}
	}
}

func TestPropsGenerate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hearth.db")
	var calls atomic.Int32
	def := PropDef{Key: "turn.secret", Secret: true, Generate: func() string {
		calls.Add(1)
		return rand.Text()
	}}

	db := openTest(t, path)
	db.Props().Define(def)
	first := db.Props().Get("turn.secret")
	if len(first) < 20 {
		t.Fatalf("generated %q", first)
	}
	if again := db.Props().Get("turn.secret"); again != first {
		t.Errorf("second Get %q, first %q", again, first)
	}
	if calls.Load() != 1 {
		t.Errorf("Generate called %d times, want 1", calls.Load())
	}
	db.Close()

	db = openTest(t, path)
	db.Props().Define(def)
	if got := db.Props().Get("turn.secret"); got != first {
		t.Errorf("after reopen %q, want %q", got, first)
	}
	if calls.Load() != 1 {
		t.Errorf("Generate called again after reopen")
	}

	// Unset rotates it, and that is a change watchers hear about.
	rec := newRecorder()
	db.Props().Watch("turn.", func(k, v string) { rec.add(k + "=" + v) })
	if err := db.Props().Unset(context.Background(), "turn.secret"); err != nil {
		t.Fatal(err)
	}
	rotated := db.Props().Get("turn.secret")
	if rotated == first || rotated == "" {
		t.Errorf("after Unset %q, want a fresh value", rotated)
	}
	if got := rec.drained(); !reflect.DeepEqual(got, []string{"turn.secret=" + rotated}) {
		t.Errorf("Watch saw %v", got)
	}
}

// Processes generating the same secret at the same moment end up with one value.
func TestPropsGenerateConcurrentProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hearth.db")
	def := PropDef{Key: "turn.secret", Generate: rand.Text}
	var dbs []*DB
	for range 4 {
		db := openTest(t, path)
		db.Props().Define(def)
		dbs = append(dbs, db)
	}
	got := make([]string, len(dbs))
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() { got[i] = db.Props().Get("turn.secret") })
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] || got[i] == "" {
			t.Fatalf("processes disagree: %q", got)
		}
	}
}

func TestPropsWatchOncePerRealChange(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	p := db.Props()
	p.Define(testPropDefs()...)
	all, tests := newRecorder(), newRecorder()
	p.Watch("", func(k, v string) { all.add(k + "=" + v) })
	p.Watch("test.", func(k, v string) { tests.add(k + "=" + v) })

	for _, step := range []struct{ key, value string }{
		{"test.flag", "true"},
		{"test.flag", "true"},   // same value: no event
		{"test.name", "hearth"}, // equal to the default: no event, though now set
		{"other.thing", "y"},
		{"test.flag", "false"},
		{"test.name", "other"},
	} {
		if err := p.Set(ctx, step.key, step.value); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"test.name", "test.count"} { // back to default; already default
		if err := p.Unset(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"test.flag=true", "other.thing=y", "test.flag=false", "test.name=other", "test.name=hearth"}
	if got := all.drained(); !reflect.DeepEqual(got, want) {
		t.Errorf("Watch(\"\") saw %v, want %v", got, want)
	}
	want = []string{"test.flag=true", "test.flag=false", "test.name=other", "test.name=hearth"}
	if got := tests.drained(); !reflect.DeepEqual(got, want) {
		t.Errorf("Watch(\"test.\") saw %v, want %v", got, want)
	}
}

func BenchmarkProps(b *testing.B) {
	ctx := context.Background()
	db := openTest(b, "")
	p := db.Props()
	p.Define(testPropDefs()...)
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if p.Duration("test.timeout") != 6*time.Minute {
				b.Fatal("wrong value")
			}
		}
	})
	// A write transaction with its change row: what `hearth prop set` and every
	// account change cost the writer.
	b.Run("set", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if err := p.Set(ctx, "test.count", strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
