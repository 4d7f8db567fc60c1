package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/provision"
)

// newRecipientCmd: the hospital's registry of external recipients.
func newRecipientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "recipient", Short: "Register the pharmacies, hospitals, companies and agencies the hospital may send data to"}
	cmd.AddCommand(newRecipientAddCmd(), newRecipientListCmd(), newRecipientDisableCmd())
	return cmd
}

func newRecipientAddCmd() *cobra.Command {
	var r provision.Recipient
	var ageKey, receiptKey, purposes, classes, retention string
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Register a recipient with its public keys and its agreement",
		Long: `add registers an external recipient. Its keys come from the recipient
(medsec package keygen on its side): the age X25519 public key packages are
encrypted to, and the Ed25519 key that signs its destruction receipts. The
agreement says for which purposes, which data classes, in which form
(identified, deidentified, aggregated: agencies never get identified data) and
for how long it may keep a package.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if r.AgeRecipient, err = keyArg(ageKey, "--age-recipient"); err != nil {
				return err
			}
			if r.ReceiptKey, err = keyArg(receiptKey, "--receipt-key"); err != nil {
				return err
			}
			if r.Agreement.Retention, err = lifecycle.ParsePeriod(retention); err != nil {
				return fmt.Errorf("--retention: %w", err)
			}
			r.Agreement.Purposes, r.Agreement.Classes = splitFlag(purposes), splitFlag(classes)
			return asLifeStaff(cmd, func(l *life, by identity.Principal) error {
				added, err := l.prov.AddRecipient(cmd.Context(), by, r)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "registered %s (%s, %s): purposes %s; classes %s; %s data; keep at most %s\n", added.ID, added.Kind, added.Name,
					strings.Join(added.Agreement.Purposes, ","), strings.Join(added.Agreement.Classes, ","), added.Agreement.Form, added.Agreement.Retention)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.ID, "id", "", "recipient id (lower-case letters, digits, -)")
	f.StringVar(&r.Name, "name", "", "the organization's name")
	f.StringVar(&r.Kind, "kind", "", "pharmacy, pharma, hospital or agency")
	f.StringVar(&ageKey, "age-recipient", "", "its age public key (age1…) or a file holding it")
	f.StringVar(&receiptKey, "receipt-key", "", "its receipt verifier key or a file holding it")
	f.StringVar(&purposes, "purposes", "", "permitted purposes, comma-separated (TREAT, PUBHLTH, HRESCH, …)")
	f.StringVar(&classes, "classes", "", "permitted data classes, comma-separated (demographics, medication, observation, note, …)")
	f.StringVar(&r.Agreement.Form, "form", "identified", "most detailed form permitted: identified, deidentified or aggregated")
	f.StringVar(&retention, "retention", "30d", "how long it may keep a package (30d, 6mo, 1y)")
	f.StringVar(&r.Agreement.Reference, "agreement", "", "reference of the signed agreement")
	addStaffFlags(cmd, "registers the recipient (a security officer or IT administrator)")
	for _, n := range []string{"id", "name", "kind", "age-recipient", "receipt-key", "purposes", "classes"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newRecipientListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the registered recipients and their agreements",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLife(cmd, func(l *life) error {
				rs, err := l.prov.Recipients(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), rs)
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tKIND\tNAME\tPURPOSES\tCLASSES\tFORM\tKEEP\tSTATE")
				for _, r := range rs {
					state := "active"
					if !r.Disabled.IsZero() {
						state = "disabled " + day(r.Disabled)
					}
					a := r.Agreement
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Kind, r.Name, strings.Join(a.Purposes, ","), strings.Join(a.Classes, ","), a.Form, a.Retention, state)
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newRecipientDisableCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "disable ID",
		Short: "Stop all further provision to a recipient (its open packages still await receipts)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return asLifeStaff(cmd, func(l *life, by identity.Principal) error {
				if err := l.prov.DisableRecipient(cmd.Context(), by, args[0], reason); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "disabled %s\n", args[0])
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why")
	addStaffFlags(cmd, "disables the recipient")
	return cmd
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newProvideCmd: a sealed package to a recipient.
func newProvideCmd() *cobra.Command {
	var r provision.Request
	var what, out string
	cmd := &cobra.Command{
		Use:   "provide",
		Short: "Send a patient's data to a registered recipient as a signed, encrypted package",
		Long: `provide assembles the patient's data of the classes named (--what) through the
one door — the access policy and the patient's consents decide, and the read is
audited — renders it as a FHIR Bundle in the form the recipient's agreement
allows, signs it with the hospital's key, encrypts it to the recipient, and
records it in the provision ledger with its digest and destruction deadline.
The package is written to --out for transfer to the recipient.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r.Classes = splitFlag(what)
			return asLifeStaff(cmd, func(l *life, by identity.Principal) error {
				r.Who = by
				p, err := l.prov.Provide(cmd.Context(), r)
				if err != nil {
					return err
				}
				if out == "" {
					out = p.Entry.ID + ".mspkg"
				}
				if err := writeOut(cmd, out, p.Package, 0o600); err != nil {
					return fmt.Errorf("write package: %w (it is recorded in the ledger as %s; send nothing else)", err, p.Entry.ID)
				}
				e := p.Entry
				fmt.Fprintf(cmd.ErrOrStderr(), "package %s for %s (%s): %s, %s data for %s; sha256 %s; destroy by %s; written to %s\n",
					e.ID, e.Recipient, e.RecipientKind, strings.Join(e.Classes, ","), e.Form, e.Purpose, e.Digest, e.Deadline.UTC().Format(time.RFC3339), out)
				if e.Withheld > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "  %d free-text records withheld: they cannot be de-identified here\n", e.Withheld)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.Recipient, "to", "", "recipient id (medsec recipient list)")
	f.StringVar(&r.PatientID, "patient", "", "the patient's id")
	f.StringVar(&r.Purpose, "purpose", "", "purpose of use (HL7): TREAT, PUBHLTH, HRESCH, …")
	f.StringVar(&what, "what", "", "data classes, comma-separated (e.g. medication,demographics)")
	f.StringVar(&r.Basis, "basis", "", "legal basis, recorded in the ledger (e.g. a public-health law)")
	f.StringVar(&r.Form, "form", "", "send less detail than the agreement allows: deidentified or aggregated")
	f.StringVar(&out, "out", "", "package file to write (default PKGID.mspkg; - for standard output)")
	addStaffFlags(cmd, "asks for the provision")
	for _, n := range []string{"to", "patient", "purpose", "what"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

// newPackageCmd: the recipient's side, which needs no data directory.
func newPackageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "package", Short: "The recipient's side: make keys, open a package, sign a destruction receipt"}
	cmd.AddCommand(newPackageKeygenCmd(), newPackageOpenCmd(), newPackageReceiptCmd())
	return cmd
}

func newPackageKeygenCmd() *cobra.Command {
	var id, dir string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Make a recipient's key pairs: an age identity that opens packages and a key that signs receipts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := provision.GenerateRecipientKeys(id)
			if err != nil {
				return err
			}
			files := []struct {
				name, text string
				mode       os.FileMode
			}{{id + ".age", k.AgeIdentity, 0o600}, {id + ".age.pub", k.AgeRecipient, 0o644}, {id + ".sign", k.SigningKey, 0o600}, {id + ".sign.pub", k.ReceiptKey, 0o644}}
			for _, f := range files {
				if err := writeOut(cmd, filepath.Join(dir, f.name), []byte(f.text+"\n"), f.mode); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "wrote %s.age and %s.sign (private: keep them here) and their .pub files in %s\n", id, id, dir)
			fmt.Fprintf(out, "give the hospital:\n  --id %s --age-recipient %s --receipt-key %s\n", id, k.AgeRecipient, k.ReceiptKey)
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the recipient id the hospital registers you under")
	cmd.Flags().StringVar(&dir, "dir", ".", "directory to write the key files to")
	cmd.MarkFlagRequired("id")
	return cmd
}

// recipientSide reads the package and the identity file of the recipient.
func recipientSide(pkgPath, identityPath string) ([]byte, []age.Identity, error) {
	pkg, err := os.ReadFile(pkgPath)
	if err != nil {
		return nil, nil, err
	}
	idText, err := os.ReadFile(identityPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read identity: %w", err)
	}
	ids, err := provision.ParseIdentities(string(idText))
	return pkg, ids, err
}

func newPackageOpenCmd() *cobra.Command {
	var identityFile, hospitalKey, out string
	cmd := &cobra.Command{
		Use:   "open PKG",
		Short: "Verify a package against the hospital's key and decrypt it (any change, cut or wrong sender is named)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pkg, ids, err := recipientSide(args[0], identityFile)
			if err != nil {
				return err
			}
			vkey, err := keyArg(hospitalKey, "--hospital-key")
			if err != nil {
				return err
			}
			v, err := provision.ParseVerifierKey(vkey)
			if err != nil {
				return err
			}
			o, err := provision.Open(pkg, v, ids...)
			if err != nil {
				return fmt.Errorf("package %s refused: %w", args[0], err)
			}
			if err := writeOut(cmd, out, append(o.Content.Bundle, '\n'), 0o600); err != nil {
				return err
			}
			c := o.Content
			fmt.Fprintf(cmd.ErrOrStderr(), "package %s from %s verified and decrypted: %s, %s data for %s; destroy every copy by %s, then run medsec package receipt\n",
				c.Package, c.From, strings.Join(c.Classes, ","), c.Form, c.Purpose, c.DestroyBy.Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&identityFile, "identity", "", "your age identity file (from medsec package keygen)")
	cmd.Flags().StringVar(&hospitalKey, "hospital-key", "", "the hospital's public key, or a file holding it")
	cmd.Flags().StringVar(&out, "out", "", "write the FHIR Bundle to this new file (default: standard output)")
	cmd.MarkFlagRequired("identity")
	cmd.MarkFlagRequired("hospital-key")
	return cmd
}

func newPackageReceiptCmd() *cobra.Command {
	var identityFile, signingKey, method, destroyed, out string
	cmd := &cobra.Command{
		Use:   "receipt PKG",
		Short: "Sign a destruction receipt for a package you have destroyed, for the hospital to import",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pkg, ids, err := recipientSide(args[0], identityFile)
			if err != nil {
				return err
			}
			skey, err := os.ReadFile(signingKey)
			if err != nil {
				return fmt.Errorf("read signing key: %w", err)
			}
			signer, err := provision.ParseSigningKey(string(skey))
			if err != nil {
				return err
			}
			at := time.Now()
			if destroyed != "" {
				if at, err = parseTime(destroyed); err != nil {
					return err
				}
			}
			receipt, err := provision.MakeReceipt(pkg, signer, method, at, ids...)
			if err != nil {
				return err
			}
			return writeOut(cmd, out, receipt, 0o644)
		},
	}
	cmd.Flags().StringVar(&identityFile, "identity", "", "your age identity file")
	cmd.Flags().StringVar(&signingKey, "signing-key", "", "your receipt signing key file (from medsec package keygen)")
	cmd.Flags().StringVar(&method, "method", "deleted with every copy and backup", "how the data was destroyed")
	cmd.Flags().StringVar(&destroyed, "destroyed", "", "when it was destroyed (default: now)")
	cmd.Flags().StringVar(&out, "out", "", "write the receipt to this new file (default: standard output)")
	cmd.MarkFlagRequired("identity")
	cmd.MarkFlagRequired("signing-key")
	return cmd
}

// newProvisionCmd: the hospital's ledger.
func newProvisionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "provision", Short: "The provision ledger: import receipts, list packages, raise overdue alerts, show the hospital key"}
	cmd.AddCommand(newProvisionReceiptCmd(), newProvisionLedgerCmd(), newProvisionOverdueCmd(), newProvisionKeyCmd())
	return cmd
}

func newProvisionReceiptCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "receipt FILE",
		Short: "Import a recipient's destruction receipt: check it and close the ledger entry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			return withLife(cmd, func(l *life) error {
				e, err := l.prov.ImportReceipt(cmd.Context(), raw)
				if err != nil {
					return fmt.Errorf("receipt %s refused: %w", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "package %s: destroyed by %s on %s; receipt verified; ledger entry closed\n", e.ID, e.Recipient, e.Destroyed.UTC().Format(time.RFC3339))
				return nil
			})
		},
	}
}

func newProvisionLedgerCmd() *cobra.Command {
	var patient string
	var open, asJSON bool
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "List the packages sent: to whom, why, on what basis, digest, deadline, receipt",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLife(cmd, func(l *life) error {
				f := provision.Filter{Open: open}
				if patient != "" {
					f.Patient = l.h.Door.Pseudonym(patient)
				}
				es, err := l.prov.Entries(cmd.Context(), f)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), es)
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "PACKAGE\tRECIPIENT\tPATIENT\tPURPOSE\tCLASSES\tFORM\tSENT\tDESTROY BY\tSTATE")
				now := time.Now()
				for _, e := range es {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Recipient, e.Patient, e.Purpose, strings.Join(e.Classes, ","), e.Form,
						day(e.Created), day(e.Deadline), e.State(now))
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&patient, "patient", "", "only this patient's packages")
	cmd.Flags().BoolVar(&open, "open", false, "only packages without a receipt")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newProvisionOverdueCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "overdue",
		Short: "Raise an alert for every package past its destruction deadline without a receipt",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now, err := clockFlag(cmd, true)
			if err != nil {
				return err
			}
			l, err := openLife(cmd, now)
			if err != nil {
				return err
			}
			defer l.close(cmd.Context())
			es, err := l.prov.CheckOverdue(cmd.Context())
			if err != nil {
				return err
			}
			for _, e := range es {
				fmt.Fprintf(cmd.OutOrStdout(), "OVERDUE %s at %s (%s): due %s\n", e.ID, e.Recipient, e.RecipientName, e.Deadline.UTC().Format(time.RFC3339))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d packages overdue\n", len(es))
			return nil
		},
	}
	cmd.Flags().String("now", "", "check as of this time (at most a day ahead of this machine's clock)")
	return cmd
}

func newProvisionKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hospital-key",
		Short: "Print the hospital's public key, which recipients check packages with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLife(cmd, func(l *life) error {
				fmt.Fprintln(cmd.OutOrStdout(), l.prov.HospitalKey())
				return nil
			})
		},
	}
}
