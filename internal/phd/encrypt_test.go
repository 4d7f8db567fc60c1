package phd

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("bad base64url in test: %v", err)
	}
	return b
}

// TestKDFContextEncoding checks COSE_KDF_Context bytes against RFC 9053 §5.2
// (encoded by hand from its CDDL) for our parameters and for the RFC's own
// Direct ECDH example (RFC 9052 Appendix C.3.1 / RFC 8152 C.3.1).
func TestKDFContextEncoding(t *testing.T) {
	tests := []struct {
		name      string
		alg       int64
		bits      int
		protected []byte
		want      string
	}{
		// [1, [nil,nil,nil], [nil,nil,nil], [128, h'A1013818']]: the RFC example.
		{"rfc example A128GCM", 1, 128, []byte{0xa1, 0x01, 0x38, 0x18}, "840183f6f6f683f6f6f682188044a1013818"},
		// [3, [nil,nil,nil], [nil,nil,nil], [256, h'A1013818']]: what Seal uses.
		{"medsec A256GCM", algA256GCM, a256KeyBits, recipientProtected, "840383f6f6f683f6f6f68219010044a1013818"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kdfContext(tt.alg, tt.bits, tt.protected)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != tt.want {
				t.Errorf("kdfContext = %x, want %s", got, tt.want)
			}
		})
	}
}

// TestDirectECDHKnownAnswer runs the Direct ECDH example of RFC 8152 /
// RFC 9052 Appendix C.3.1 (intermediates as published in the COSE working
// group's Examples repository, RFC8152/Appendix_C_3_1.json) through the
// same functions Seal and Open use: ECDH, COSE_KDF_Context, HKDF-SHA-256,
// Enc_structure and AES-GCM.
func TestDirectECDHKnownAnswer(t *testing.T) {
	priv, err := ecdh.P256().NewPrivateKey(unb64(t, "r_kHyZ-a06rmxM3yESK84r1otSg-aQcVStkRhA-iCM8"))
	if err != nil {
		t.Fatal(err)
	}
	eph, err := ecdh.P256().NewPublicKey(uncompressed(coseKey{
		X: unb64(t, "mPUKT_bAWGHIhg0TpjjqVsP1rXWQu_vwVOHHtNkdYoA"),
		Y: unb64(t, "8BQAsImGeAS46fyWw5MhYfGTT0IjBpFw2SS34Dv4Irs"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := priv.ECDH(eph)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "4B31712E096E5F20B4ECF9790FD8CC7C8B7E2C8AD90BDA81CB224F62C0E7B9A6"); !bytes.Equal(secret, want) {
		t.Fatalf("ECDH secret = %x, want %x", secret, want)
	}
	ctx, err := kdfContext(1, 128, unhex(t, "A1013818"))
	if err != nil {
		t.Fatal(err)
	}
	cek, err := deriveKey(secret, ctx, 16)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "56074D506729CA40C4B4FE50C6439893"); !bytes.Equal(cek, want) {
		t.Fatalf("CEK = %x, want %x", cek, want)
	}
	aad, err := encStructure(unhex(t, "A10101"))
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "8367456E637279707443A1010140"); !bytes.Equal(aad, want) {
		t.Fatalf("Enc_structure = %x, want %x", aad, want)
	}
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, unhex(t, "C9CF4DF2FE6C632BF7886413"),
		unhex(t, "7ADBE2709CA818FB415F1E5DF66F4E1A51053BA6D65A1A0C52A357DA7A644B8070A151B0"), aad)
	if err != nil {
		t.Fatalf("decrypt RFC example: %v", err)
	}
	if got, want := string(plain), "This is the content."; got != want {
		t.Errorf("plaintext = %q, want %q", got, want)
	}
}

// The RFC example uses A128GCM and a compressed point; medsec accepts only
// A256GCM and uncompressed points, and says so.
func TestDecodeEncryptRefusesOtherProfiles(t *testing.T) {
	rfc := unhex(t, "D8608443A10101A1054CC9CF4DF2FE6C632BF788641358247ADBE2709CA818FB415F1E5DF66F4E1A51053BA6D65A1A0C52A357DA7A644B8070A151B0818344A1013818A220A40102200121582098F50A4FF6C05861C8860D13A638EA56C3F5AD7590BBFBF054E1C7B4D91D628022F50458246D65726961646F632E6272616E64796275636B406275636B6C616E642E6578616D706C6540")
	_, err := decodeEncrypt(rfc)
	if got := ReasonOf(err); got != ReasonMalformed {
		t.Errorf("decodeEncrypt(RFC A128GCM example) reason = %q, want %q (err %v)", got, ReasonMalformed, err)
	}
}

func TestEncryptRoundTrip(t *testing.T) {
	priv := newHospitalKey(t)
	ct, err := encryptTo(priv.PublicKey(), []byte("reading"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := decryptWith(priv, ct)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "reading" {
		t.Errorf("decrypt = %q, want %q", got, "reading")
	}
	other := newHospitalKey(t)
	if _, err := decryptWith(other, ct); ReasonOf(err) != ReasonWrongRecipient {
		t.Errorf("decrypt with another key: reason %q, want %q", ReasonOf(err), ReasonWrongRecipient)
	}
}
