// Package policies carries medsec's shipped Cedar access policies and their
// schema inside the binary, so a hospital gets the least-privilege floor
// without installing files. internal/access loads them (or a directory that
// overrides them) and validates every policy against the schema at start-up.
//
// It serves locations 4 (HIS) and 6 (main server) of the paper: access
// control, user identification and authority at the points where patient
// data is read.
package policies

import "embed"

// FS holds the schema (medsec.cedarschema) and the policy files (*.cedar).
//
//go:embed *.cedar *.cedarschema
var FS embed.FS
