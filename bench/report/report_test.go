package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const results = `
{"scenario":"chat","server":"prosody","round":1,"ok":true,"auth":"SCRAM-SHA-256 over STARTTLS","metrics":{"delivered_per_s":9000,"latency_p99_ms":20}}
{"scenario":"chat","server":"hearth","round":1,"ok":true,"metrics":{"delivered_per_s":30000,"latency_p99_ms":4}}
{"scenario":"chat","server":"hearth","round":2,"ok":true,"metrics":{"delivered_per_s":50000,"latency_p99_ms":5}}
{"scenario":"chat","server":"hearth","round":3,"ok":false,"error":"2 messages lost","metrics":{"delivered_per_s":40000,"latency_p99_ms":6}}
{"scenario":"chat","server":"prosody","round":2,"ok":true,"metrics":{"delivered_per_s":11000,"latency_p99_ms":30}}
not json at all
{"scenario":"start","server":"ejabberd","round":2,"ok":false,"error":"server did not start","metrics":{}}
{"scenario":"muc","server":"prosody","round":1,"ok":false,"error":"MUC not available at conference.localhost","metrics":{}}
`

func TestRender(t *testing.T) {
	lines, err := Read(strings.NewReader(results))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 7 {
		t.Fatalf("read %d lines", len(lines))
	}
	out := Render(lines, Meta{Date: "2026-01-01", Machine: map[string]any{"nproc": 2}, Caveats: []string{"shared machine"}}, "hearth")
	for _, want := range []string{
		// ejabberd never started: a column of dashes, not a missing column.
		"| metric | better | hearth | prosody | ejabberd | prosody ÷ hearth | ejabberd ÷ hearth |",
		// hearth's median of 30000, 40000, 50000; prosody's of 9000 and 11000.
		"| chat: messages delivered/s | higher | 40000 (30000–50000) | 10000 (9000–11000) | — | 0.25 | — |",
		"| chat: p99 latency, ms | lower | 5.00 (4.00–6.00) | 25.0 (20.0–30.0) | — | 5.00 | — |",
		"- hearth, chat: 1 of 3 rounds failed: 2 messages lost",
		"- prosody, muc: 1 of 1 rounds failed: MUC not available at conference.localhost",
		"- hearth, muc: not run",
		"Machine: nproc: 2.",
		"- shared machine",
		"- ejabberd, start (round 2): server did not start",
		"Authentication: prosody: SCRAM-SHA-256 over STARTTLS.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	// Rows with no figure for any server are left out.
	if strings.Contains(out, "| login:") || strings.Contains(out, "hearth, login") {
		t.Errorf("empty login rows rendered:\n%s", out)
	}
}

func TestUpdateKeepsTheRestOfTheDocument(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance.md")
	// Missing file: created with a title and the section.
	if err := Update(path, "first\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "# Performance\n\n"+Heading+"\n\n"+Begin+"\nfirst\n"+End) {
		t.Fatalf("new document:\n%s", b)
	}
	// Other sections and text around the markers survive a second update.
	doc := "# Performance\n\n## Other\nkeep me\n\n" + Heading + "\nprose before\n" + Begin + "\nold\n" + End + "\nprose after\n"
	os.WriteFile(path, []byte(doc), 0o644)
	if err := Update(path, "new\n"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	want := "# Performance\n\n## Other\nkeep me\n\n" + Heading + "\nprose before\n" + Begin + "\nnew\n" + End + "\nprose after\n"
	if string(b) != want {
		t.Fatalf("updated document:\n%s\nwant:\n%s", b, want)
	}
	// A document without the section gets it appended.
	os.WriteFile(path, []byte("# Performance\n\n## Other\nkeep me"), 0o644)
	if err := Update(path, "x\n"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if !strings.HasPrefix(string(b), "# Performance\n\n## Other\nkeep me\n\n"+Heading) || !strings.Contains(string(b), Begin+"\nx\n"+End) {
		t.Fatalf("appended section:\n%s", b)
	}
}

func TestFormat(t *testing.T) {
	for v, want := range map[float64]string{51259.4: "51259", 15.53: "15.5", 2.004: "2.00", 0.6412: "0.641", -86.8: "-86.8"} {
		if got := format(v); got != want {
			t.Errorf("format(%v) = %q, want %q", v, got, want)
		}
	}
}
