package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/medsec/medsec/internal/store/sqlite"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"medsec": func() { os.Exit(run()) },
		// sql runs a statement on an installation's SQLite file behind
		// medsec's back, as an intruder with file access would.
		"sql": func() { os.Exit(sqlCmd(os.Args[1:])) },
		// mkcd writes an imaging CD tree: a study, a polyglot, autorun.
		"mkcd": func() { os.Exit(mkcdCmd(os.Args[1:])) },
	})
}

func sqlCmd(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sql DATADIR STATEMENT")
		return 2
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(args[0], "medsec.db"), false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer db.Close()
	if _, err := db.Exec(context.Background(), args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestScripts runs the command-line scripts in testdata/script: each runs
// medsec commands and checks what they print and how they exit.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("MEDSEC_PASSPHRASE", "correct horse battery staple")
			return nil
		},
	})
}
