package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
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
			env.Setenv("MEDSEC_SESSION_FILE", filepath.Join(env.WorkDir, "sessions.json"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"totpsecret": totpSecretCmd,
			"totp":       totpCmd,
		},
	})
}

// totpSecretCmd sets the variable args[0] to the authenticator secret that
// the previous command printed ("secret XXXX", as medsec init does).
func totpSecretCmd(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: totpsecret VAR")
	}
	m := regexp.MustCompile(`secret ([A-Z2-7]{16,})`).FindStringSubmatch(ts.ReadFile("stdout"))
	if m == nil {
		ts.Fatalf("the previous command printed no authenticator secret")
	}
	ts.Setenv(args[0], m[1])
}

// totpCmd sets the variable args[1] to the one-time code of the secret in
// the variable args[0] for the current 30-second step (plus args[2] steps).
func totpCmd(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: totp SECRETVAR CODEVAR [STEPS]")
	}
	at := time.Now()
	if len(args) == 3 {
		n, err := strconv.Atoi(args[2])
		ts.Check(err)
		at = at.Add(time.Duration(n) * 30 * time.Second)
	}
	code, err := totp.GenerateCode(ts.Getenv(args[0]), at)
	ts.Check(err)
	ts.Setenv(args[1], code)
}
