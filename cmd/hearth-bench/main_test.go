package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseSources(t *testing.T) {
	got, err := parseSources("127.0.0.1, 127.0.0.5-127.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, ip := range got {
		s = append(s, ip.String())
	}
	if strings.Join(s, " ") != "127.0.0.1 127.0.0.5 127.0.0.6 127.0.0.7" {
		t.Fatalf("parseSources = %v", s)
	}
	for _, bad := range []string{"10.0.0.1", "127.0.0.9-127.0.0.2", "127.0.0.1-127.0.1.3", "x", "::1"} {
		if _, err := parseSources(bad); err == nil {
			t.Errorf("parseSources(%q) accepted", bad)
		}
	}
}

func TestFanoutAccountsComeLast(t *testing.T) {
	s := sizes{loginN: 10, idleN: 30, chatPairs: 20, mucR: 5, fanK: 7, fanFirst: -1}
	if s.fanoutFirst() != 40 || s.total() != 48 {
		t.Fatalf("fanoutFirst = %d, total = %d", s.fanoutFirst(), s.total())
	}
	s.fanFirst = 100
	if s.fanoutFirst() != 100 || s.total() != 108 {
		t.Fatalf("explicit fanoutFirst = %d, total = %d", s.fanoutFirst(), s.total())
	}
}

func TestBadArguments(t *testing.T) {
	var out, errb bytes.Buffer
	for _, args := range [][]string{
		{"frobnicate"},
		{"run", "--users", "user"},
		{"run", "--scenarios", "nosuch", "--addr", "127.0.0.1:1", "--pid", "none", "--warmup", "0"},
		{"run", "--pid", "abc"},
	} {
		if err := run(args, &out, &errb); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
