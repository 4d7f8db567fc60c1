package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-webauthn/webauthn/protocol"

	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

const (
	testRPID   = "medsec.hospital.test"
	testOrigin = "https://medsec.hospital.test"
)

// Authenticator data flags (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

// softAuthenticator is a software passkey: an ECDSA P-256 key that answers
// WebAuthn ceremonies the way a platform authenticator does, with
// attestation "none".
type softAuthenticator struct {
	key    *ecdsa.PrivateKey
	credID []byte
	handle []byte
	count  uint32
	origin string
	rpID   string
}

func newSoftAuthenticator(t testing.TB) *softAuthenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &softAuthenticator{key: key, credID: random(16), origin: testOrigin, rpID: testRPID}
}

var b64 = base64.RawURLEncoding

func (s *softAuthenticator) clientData(typ string, challenge []byte) []byte {
	cd, _ := json.Marshal(map[string]any{"type": typ, "challenge": b64.EncodeToString(challenge), "origin": s.origin, "crossOrigin": false})
	return cd
}

func (s *softAuthenticator) authData(flags byte, attested []byte) []byte {
	rp := sha256.Sum256([]byte(s.rpID))
	out := append(rp[:], flags)
	out = binary.BigEndian.AppendUint32(out, s.count)
	return append(out, attested...)
}

// coseKey is the credential public key as a COSE_Key (RFC 9053: EC2, ES256, P-256).
func (s *softAuthenticator) coseKey(t testing.TB) []byte {
	t.Helper()
	pub, err := s.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	em, _ := cbor.CoreDetEncOptions().EncMode()
	k, err := em.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pub[1:33], -3: pub[33:]})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// register answers navigator.credentials.create.
func (s *softAuthenticator) register(t testing.TB, c *protocol.CredentialCreation) []byte {
	t.Helper()
	s.handle = c.Response.User.ID.(protocol.URLEncodedBase64)
	attested := make([]byte, 16) // AAGUID: zero for "none"
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(s.credID)))
	attested = append(append(attested, s.credID...), s.coseKey(t)...)
	em, _ := cbor.CoreDetEncOptions().EncMode()
	obj, err := em.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": s.authData(flagUP|flagUV|flagAT, attested)})
	if err != nil {
		t.Fatal(err)
	}
	return s.marshal(t, map[string]any{
		"clientDataJSON":    b64.EncodeToString(s.clientData("webauthn.create", c.Response.Challenge)),
		"attestationObject": b64.EncodeToString(obj),
		"transports":        []string{"internal"},
	})
}

// assert answers navigator.credentials.get with the given flags.
func (s *softAuthenticator) assert(t testing.TB, a *protocol.CredentialAssertion, flags byte) []byte {
	t.Helper()
	s.count++
	cd := s.clientData("webauthn.get", a.Response.Challenge)
	ad := s.authData(flags, nil)
	cdh := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return s.marshal(t, map[string]any{
		"clientDataJSON":    b64.EncodeToString(cd),
		"authenticatorData": b64.EncodeToString(ad),
		"signature":         b64.EncodeToString(sig),
		"userHandle":        b64.EncodeToString(s.handle),
	})
}

func (s *softAuthenticator) marshal(t testing.TB, response map[string]any) []byte {
	t.Helper()
	id := b64.EncodeToString(s.credID)
	raw, err := json.Marshal(map[string]any{"id": id, "rawId": id, "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{}, "response": response})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func newPasskeys(t testing.TB, f *fixture) *Passkeys {
	t.Helper()
	pk, err := NewPasskeys(f.dir, PasskeyConfig{RPID: testRPID, RPDisplayName: "Test Hospital medsec", Origins: []string{testOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// registerPasskey adds a soft passkey to the account of who.
func registerPasskey(t testing.TB, pk *Passkeys, who Principal) *softAuthenticator {
	t.Helper()
	ctx := context.Background()
	soft := newSoftAuthenticator(t)
	creation, id, err := pk.BeginRegistration(ctx, who)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pk.FinishRegistration(ctx, who, id, soft.register(t, creation)); err != nil {
		t.Fatalf("finish registration: %v", err)
	}
	return soft
}

func TestPasskeyRegistrationAndLogin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		pk := newPasskeys(t, f)
		s := f.person(t, "sec.nam", RoleSecurityOfficer)
		secret := f.enrol(t, s)
		p, _ := f.login(t, LoginRequest{Username: "sec.nam", Password: passwordFor("sec.nam"), TOTP: f.code(t, secret)})
		soft := registerPasskey(t, pk, p)
		list, err := pk.List(ctx, p, s.ID)
		if err != nil || len(list) != 1 || list[0].ID != b64.EncodeToString(soft.credID) {
			t.Fatalf("got passkeys %+v (%v), want the registered one", list, err)
		}
		assertion, id, err := pk.BeginLogin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		answer := soft.assert(t, assertion, flagUP|flagUV)
		sess, token, err := pk.FinishLogin(ctx, id, answer, "192.0.2.7")
		if err != nil {
			t.Fatalf("passkey sign-in: %v", err)
		}
		if sess.StaffID != s.ID || !sess.MFA || sess.Method != "passkey" {
			t.Errorf("got session %+v, want a two-factor passkey session of %s", sess, s.ID)
		}
		got, err := f.dir.Sessions.Authenticate(ctx, token, "192.0.2.7")
		if err != nil || got.ID != s.ID || !got.MFA {
			t.Errorf("got %+v (%v), want the security officer with MFA", got, err)
		}
		// The same answer again: the ceremony is used up.
		_, _, err = pk.FinishLogin(ctx, id, answer, "192.0.2.7")
		wantErr(t, err, ErrCeremony)
	})
}

func TestPasskeyLoginRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		pk := newPasskeys(t, f)
		f.person(t, "dr.jang", RolePhysician)
		p, _ := f.login(t, LoginRequest{Username: "dr.jang", Password: passwordFor("dr.jang")})
		soft := registerPasskey(t, pk, p)
		a, id, _ := pk.BeginLogin(ctx)
		if _, _, err := pk.FinishLogin(ctx, id, soft.assert(t, a, flagUP|flagUV), "x"); err != nil {
			t.Fatalf("genuine passkey: %v", err)
		}
		tests := []struct {
			name   string
			answer func(a *protocol.CredentialAssertion) []byte
			want   error
		}{
			{"forged signature", func(a *protocol.CredentialAssertion) []byte {
				forger := newSoftAuthenticator(t)
				forger.credID, forger.handle, forger.count = soft.credID, soft.handle, soft.count+10
				return forger.assert(t, a, flagUP|flagUV)
			}, ErrBadCredentials},
			{"wrong origin", func(a *protocol.CredentialAssertion) []byte {
				soft.origin = "https://phish.example"
				defer func() { soft.origin = testOrigin }()
				return soft.assert(t, a, flagUP|flagUV)
			}, ErrBadCredentials},
			{"user not verified", func(a *protocol.CredentialAssertion) []byte { return soft.assert(t, a, flagUP) }, ErrBadCredentials},
			{"counter went backwards", func(a *protocol.CredentialAssertion) []byte {
				soft.count = 0
				return soft.assert(t, a, flagUP|flagUV)
			}, ErrBadCredentials},
			{"unknown user handle", func(a *protocol.CredentialAssertion) []byte {
				other := newSoftAuthenticator(t)
				other.handle = random(32)
				return other.assert(t, a, flagUP|flagUV)
			}, ErrBadCredentials},
			{"not JSON", func(*protocol.CredentialAssertion) []byte { return []byte(`{"id": "' OR 1=1 --"`) }, ErrBadCredentials},
			{"oversized", func(*protocol.CredentialAssertion) []byte { return make([]byte, maxCeremonyResponse+1) }, ErrInvalid},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				a, id, err := pk.BeginLogin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				_, token, err := pk.FinishLogin(ctx, id, tc.answer(a), "x")
				t.Logf("refused: %v", err)
				wantErr(t, err, tc.want)
				if token != "" {
					t.Error("got a token")
				}
			})
		}
		// An unknown ceremony id.
		_, _, err := pk.FinishLogin(ctx, strings.Repeat("A", 43), []byte("{}"), "x")
		wantErr(t, err, ErrCeremony)
		// After all that, the genuine passkey (counter moved on) still works.
		soft.count = 100
		a, id, _ = pk.BeginLogin(ctx)
		if _, _, err := pk.FinishLogin(ctx, id, soft.assert(t, a, flagUP|flagUV), "x"); err != nil {
			t.Errorf("genuine passkey after refusals: %v", err)
		}
	})
}

func TestPasskeyRegistrationRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		pk := newPasskeys(t, f)
		f.person(t, "nurse.yang", RoleNurse)
		f.person(t, "nurse.bang", RoleNurse)
		p, _ := f.login(t, LoginRequest{Username: "nurse.yang", Password: passwordFor("nurse.yang")})
		other, _ := f.login(t, LoginRequest{Username: "nurse.bang", Password: passwordFor("nurse.bang")})
		_, _, err := pk.BeginRegistration(ctx, Principal{Staff: Staff{ID: p.ID}})
		wantErr(t, err, ErrForbidden)
		// Someone else finishing my ceremony.
		soft := newSoftAuthenticator(t)
		c, id, _ := pk.BeginRegistration(ctx, p)
		_, err = pk.FinishRegistration(ctx, other, id, soft.register(t, c))
		wantErr(t, err, ErrForbidden)
		// A challenge from another ceremony.
		c1, _, _ := pk.BeginRegistration(ctx, p)
		_, id2, _ := pk.BeginRegistration(ctx, p)
		_, err = pk.FinishRegistration(ctx, p, id2, soft.register(t, c1))
		wantErr(t, err, ErrInvalid)
		if list, _ := pk.List(ctx, p, p.ID); len(list) != 0 {
			t.Errorf("got %d passkeys stored, want none", len(list))
		}
	})
}
