package proc

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestSelfFigures(t *testing.T) {
	rss, err := RSSKiB(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("RSSKiB = %d, %v", rss, err)
	}
	if _, err := CPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if _, err := RSSKiB(-1); err == nil {
		t.Fatal("RSS of a missing process")
	}
}

func TestListenerPID(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	pid, err := ListenerPID(port)
	if err != nil {
		t.Fatal(err)
	}
	if pid != os.Getpid() {
		t.Fatalf("ListenerPID = %d, want %d", pid, os.Getpid())
	}
	ln.Close()
	if _, err := ListenerPID(port); err == nil {
		t.Fatal("found a listener on a closed port")
	}
}

func TestReadPidFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pid")
	os.WriteFile(p, []byte(strconv.Itoa(42)+"\n"), 0o600)
	if pid, err := ReadPidFile(p); err != nil || pid != 42 {
		t.Fatalf("ReadPidFile = %d, %v", pid, err)
	}
	os.WriteFile(p, []byte("x"), 0o600)
	if _, err := ReadPidFile(p); err == nil {
		t.Fatal("bad pidfile accepted")
	}
}

func TestDescribe(t *testing.T) {
	m := Describe()
	if m.CPUs < 1 || m.Kernel == "" || m.MemGiB == "" {
		t.Fatalf("Describe = %+v", m)
	}
}
