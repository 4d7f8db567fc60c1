package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
)

// Members of staff act on the command line the way they do in the
// browser: through a server-side session opened by Login, which applies
// the second factor their role requires, lockout and the audit log. A
// session opened once (`medsec login`, or the first command with --as) is
// kept in a session file (mode 0600) and reused until it times out, so a
// one-time code is typed once per session, not once per command.

// addStaffFlags adds --as and --totp to a command a member of staff runs.
func addStaffFlags(cmd *cobra.Command, why string) {
	cmd.Flags().String("as", "", "user name of the member of staff who "+why+" (password from MEDSEC_STAFF_PASSWORD or a prompt; a saved session from medsec login is reused)")
	cmd.Flags().String("totp", "", "one-time code of their authenticator (or MEDSEC_STAFF_TOTP); privileged roles need one")
}

// addSignInFlags is addStaffFlags for commands that say nothing more.
func addSignInFlags(cmd *cobra.Command) { addStaffFlags(cmd, "acts") }

// staffPrincipal signs in the member of staff named by --as.
func staffPrincipal(cmd *cobra.Command, h *hospital.Hospital) (identity.Principal, error) {
	user, _ := cmd.Flags().GetString("as")
	if user == "" {
		return identity.Principal{}, errors.New("name the member of staff who does this with --as USERNAME")
	}
	sessions := loadSessions()
	key := h.Config.Hospital.ID + "/" + user
	if token := sessions[key]; token != "" {
		p, err := h.Staff.Sessions.Authenticate(cmd.Context(), token, cliActor())
		if err == nil && p.Username == user {
			return p, nil
		}
		delete(sessions, key) // timed out or revoked: sign in again
	}
	token, err := login(cmd, h, user)
	if err != nil {
		return identity.Principal{}, err
	}
	sessions[key] = token
	if err := saveSessions(sessions); err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "medsec: warning: the session could not be saved:", err)
	}
	return h.Staff.Sessions.Authenticate(cmd.Context(), token, cliActor())
}

// signIn is staffPrincipal for commands that end their session when done.
func signIn(cmd *cobra.Command, h *hospital.Hospital) (identity.Principal, func(), error) {
	p, err := staffPrincipal(cmd, h)
	return p, func() {}, err
}

func login(cmd *cobra.Command, h *hospital.Hospital, user string) (string, error) {
	pw, err := staffSecret("MEDSEC_STAFF_PASSWORD", "Password for "+user)
	if err != nil {
		return "", err
	}
	code, _ := cmd.Flags().GetString("totp")
	if code == "" {
		code = os.Getenv("MEDSEC_STAFF_TOTP")
	}
	if code == "" && h.Staff.RequiresMFA(roleOf(cmd, h, user)) && term.IsTerminal(int(os.Stdin.Fd())) {
		if code, err = staffSecret("MEDSEC_STAFF_TOTP", "One-time code for "+user); err != nil {
			return "", err
		}
	}
	_, token, err := h.Staff.Login(cmd.Context(), identity.LoginRequest{Username: user, Password: pw, TOTP: code, Source: cliActor()})
	if err != nil {
		return "", fmt.Errorf("sign in %s: %w", user, err)
	}
	return token, nil
}

func roleOf(cmd *cobra.Command, h *hospital.Hospital, user string) string {
	st, err := h.Staff.Lookup(cmd.Context(), user)
	if err != nil {
		return ""
	}
	return st.Role
}

// staffSecret reads a secret from the environment or, on a terminal, a
// prompt without echo.
func staffSecret(env, prompt string) (string, error) {
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", fmt.Errorf("no secret: set %s or run on a terminal to be asked", env)
	}
	fmt.Fprint(os.Stderr, prompt+": ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	return string(b), err
}

// sessionFile is where sessions are kept: $MEDSEC_SESSION_FILE, or a file
// in the user's configuration directory.
func sessionFile() string {
	if f := os.Getenv("MEDSEC_SESSION_FILE"); f != "" {
		return f
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "medsec", "sessions.json")
}

func loadSessions() map[string]string {
	m := map[string]string{}
	if f := sessionFile(); f != "" {
		if raw, err := os.ReadFile(f); err == nil {
			json.Unmarshal(raw, &m)
		}
	}
	return m
}

func saveSessions(m map[string]string) error {
	f := sessionFile()
	if f == "" {
		return errors.New("no place for the session file: set MEDSEC_SESSION_FILE")
	}
	if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
		return err
	}
	raw, _ := json.Marshal(m)
	return keys.WriteFileAtomic(f, raw, 0o600)
}

func newLoginCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "login --as USERNAME [--totp CODE]",
		Short: "Open a staff session for the commands that follow (second factor where the role needs one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return asStaff(cmd, func(_ *hospital.Hospital, p identity.Principal) error {
				fmt.Fprintf(cmd.OutOrStdout(), "signed in as %s (%s)%s; the session is kept in %s\n", p.Username, p.Role, mfaNote(p), sessionFile())
				return nil
			})
		},
	}
	addSignInFlags(cmd)
	return cmd
}

func mfaNote(p identity.Principal) string {
	if p.MFA {
		return " with a second factor"
	}
	return ""
}

func newLogoutCmd() *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "logout --as USERNAME",
		Short: "End a saved staff session",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := openHospital(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			sessions := loadSessions()
			key := h.Config.Hospital.ID + "/" + user
			if token := sessions[key]; token != "" {
				if err := h.Staff.Sessions.Logout(cmd.Context(), token, cliActor()); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "medsec: warning:", err)
				}
			}
			delete(sessions, key)
			if err := saveSessions(sessions); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed out %s\n", user)
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "as", "", "user name")
	cmd.MarkFlagRequired("as")
	return cmd
}

// asStaff opens the installation, signs in the member of staff named by
// --as and runs fn.
func asStaff(cmd *cobra.Command, fn func(h *hospital.Hospital, by identity.Principal) error) error {
	h, err := openHospital(cmd)
	if err != nil {
		return err
	}
	defer h.Close(cmd.Context())
	by, err := staffPrincipal(cmd, h)
	if err != nil {
		return err
	}
	return fn(h, by)
}
