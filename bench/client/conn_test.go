package client

import (
	"strings"
	"testing"
)

func features(t *testing.T, mechs ...string) *Element {
	t.Helper()
	var b strings.Builder
	b.WriteString("<stream:features><mechanisms xmlns='" + NSSASL + "'>")
	for _, m := range mechs {
		b.WriteString("<mechanism>" + m + "</mechanism>")
	}
	b.WriteString("</mechanisms></stream:features>")
	e, err := Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestChooseMech(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		offered []string
		want    string // "" = error
	}{
		{"prefers SHA-256", Config{}, []string{"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"}, "SCRAM-SHA-256"},
		{"SHA-1 when alone", Config{}, []string{"PLAIN", "SCRAM-SHA-1"}, "SCRAM-SHA-1"},
		{"SHA-512 last", Config{}, []string{"SCRAM-SHA-512"}, "SCRAM-SHA-512"},
		{"no PLAIN over TLS", Config{}, []string{"PLAIN"}, ""},
		{"PLAIN without TLS", Config{NoTLS: true}, []string{"PLAIN"}, "PLAIN"},
		{"SCRAM still preferred without TLS", Config{NoTLS: true}, []string{"PLAIN", "SCRAM-SHA-1"}, "SCRAM-SHA-1"},
		{"forced", Config{Mech: "SCRAM-SHA-512"}, []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}, "SCRAM-SHA-512"},
		{"forced but not offered", Config{Mech: "SCRAM-SHA-512"}, []string{"SCRAM-SHA-256"}, ""},
		{"forced PLAIN over TLS", Config{Mech: "PLAIN"}, []string{"PLAIN"}, ""},
		{"unknown only", Config{}, []string{"X-OAUTH2", "SCRAM-SHA-1-PLUS"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chooseMech(&tt.cfg, features(t, tt.offered...))
			if tt.want == "" {
				if err == nil {
					t.Fatalf("chose %s, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("chooseMech = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := chooseMech(&Config{}, &Element{Name: "stream:features"}); err == nil {
		t.Fatal("no mechanisms element accepted")
	}
}

func TestJIDParts(t *testing.T) {
	if Bare("a@b/c/d") != "a@b" || Resource("a@b/c/d") != "c/d" || Bare("a@b") != "a@b" || Resource("a@b") != "" {
		t.Fatal("JID parts")
	}
}
