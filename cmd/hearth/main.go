// Command hearth is the hearth XMPP server and video gateway. It parses flags,
// runs subcommands and wires the packages together; it holds no logic of its
// own (DESIGN.md §1 is the contract for its flags).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/hearth-im/hearth/media/node"
	"github.com/hearth-im/hearth/media/turn"
	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/server"
	"github.com/hearth-im/hearth/server/sasl"
	"github.com/hearth-im/hearth/storage"
)

const baseVersion = "0.1.0"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args, stderr)
	case "user":
		err = userCmd(args, stdout)
	case "prop":
		err = propCmd(args, stdout)
	case "version":
		fmt.Fprintln(stdout, "hearth", version())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "hearth:", err)
		}
		return 1
	}
	return 0
}

const usage = `usage:
  hearth [serve] [flags]            run the server (serve is the default)
  hearth user add USER PASSWORD [--admin] [--data DIR]
  hearth user del USER | passwd USER PASSWORD | list   [--data DIR]
  hearth prop get KEY | set KEY VALUE | list           [--data DIR]
  hearth version
Every serve flag can also be given as HEARTH_<FLAG> (HEARTH_DATA, HEARTH_C2S_TLS, ...).
`

func version() string {
	v := baseVersion
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}

// envDefault returns HEARTH_<NAME> or def.
func envDefault(name, def string) string {
	k := "HEARTH_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if v, ok := os.LookupEnv(k); ok {
		return v
	}
	return def
}

// splitFlags moves flags after positional arguments to the front, so that
// `hearth user add bob secret --data d` works like the DESIGN.md examples.
func splitFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	return pos, nil
}

// openData opens the database in dir with every property defined, as the
// server does, so `prop set` validates keys and values the same way.
func openData(dir string, log *slog.Logger) (*storage.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	db, err := storage.Open(filepath.Join(dir, "hearth.db"), log)
	if err != nil {
		return nil, err
	}
	defineProps(db.Props())
	return db, nil
}

func defineProps(p *storage.Props) {
	p.Define(server.Properties()...)
	p.Define(turn.Properties()...)
	p.Define(node.Properties()...)
	plugins.Define(p, pluginList(deps{}))
}

func userCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("user", flag.ContinueOnError)
	data := fs.String("data", envDefault("data", "./hearth-data"), "state directory")
	admin := fs.Bool("admin", false, "make the user an administrator (add)")
	pos, err := splitFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errors.New("user: add|del|passwd|list")
	}
	db, err := openData(*data, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	users := db.Users()
	need := func(n int) error {
		if len(pos) != n {
			return fmt.Errorf("user %s: want %d arguments", pos[0], n-1)
		}
		return nil
	}
	switch pos[0] {
	case "add", "passwd":
		if err := need(3); err != nil {
			return err
		}
		name, err := localpart(pos[1])
		if err != nil {
			return err
		}
		creds, err := sasl.NewCredentials(pos[2])
		if err != nil {
			return err
		}
		if pos[0] == "add" {
			return users.Create(ctx, name, *admin, creds)
		}
		return users.SetCredentials(ctx, name, creds)
	case "del":
		if err := need(2); err != nil {
			return err
		}
		return users.Delete(ctx, pos[1])
	case "list":
		list, err := users.List(ctx)
		if err != nil {
			return err
		}
		for _, u := range list {
			role := ""
			if u.Admin {
				role = "\tadmin"
			}
			fmt.Fprintf(out, "%s%s\n", u.Name, role)
		}
		return nil
	}
	return fmt.Errorf("user: unknown action %q", pos[0])
}

func propCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("prop", flag.ContinueOnError)
	data := fs.String("data", envDefault("data", "./hearth-data"), "state directory")
	pos, err := splitFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errors.New("prop: get|set|list")
	}
	db, err := openData(*data, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer db.Close()
	props := db.Props()
	switch {
	case pos[0] == "get" && len(pos) == 2:
		for _, p := range props.List() {
			if p.Key == pos[1] {
				fmt.Fprintln(out, props.Get(pos[1]))
				return nil
			}
		}
		return fmt.Errorf("prop: unknown property %q", pos[1])
	case pos[0] == "set" && len(pos) == 3:
		return props.Set(context.Background(), pos[1], pos[2])
	case pos[0] == "list" && len(pos) == 1:
		list := props.List()
		sort.Slice(list, func(i, j int) bool { return list[i].Key < list[j].Key })
		for _, p := range list {
			mark := ""
			if p.IsSet {
				mark = " (set)"
			}
			fmt.Fprintf(out, "%s = %s%s\n", p.Key, p.Value, mark)
		}
		return nil
	}
	return errors.New("prop: get KEY | set KEY VALUE | list")
}
