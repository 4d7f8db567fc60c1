package fhirapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Strict JSON in: a body the API accepts is valid UTF-8, one JSON object
// without duplicate keys, nested at most maxDepth deep, whose every field
// the resource knows, with the right types. Anything else is a 400 that
// names the problem, before anything is stored.

const maxDepth = 32

// readBody reads a JSON request body: 415 for another media type, 413 past
// MaxBody.
func readBody(r *http.Request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/fhir+json" && mt != "application/json") {
		return nil, &apiError{status: http.StatusUnsupportedMediaType, code: "not-supported",
			msg: "send the resource as application/fhir+json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &apiError{status: http.StatusRequestEntityTooLarge, code: "too-costly",
			msg: fmt.Sprintf("the body is larger than %d bytes", MaxBody)}
	}
	if err != nil {
		return nil, badRequest("could not read the body")
	}
	return body, nil
}

// decodeStrict decodes body into dst (a pointer to a struct) under the
// rules above.
func decodeStrict(body []byte, dst any) error {
	if err := checkShape(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("the body holds more than one JSON value")
	}
	return nil
}

// checkShape walks the tokens: valid UTF-8, an object at the top, no
// duplicate key in any object, bounded nesting.
func checkShape(body []byte) error {
	if !utf8.Valid(body) {
		return badRequest("the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return badRequest("the body is not JSON: %s", syntaxMessage(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return badRequest("the body must be a JSON object")
	}
	return walkObject(dec, 1, "")
}

func walkObject(dec *json.Decoder, depth int, path string) error {
	if depth > maxDepth {
		return badRequest("the JSON is nested more than %d levels deep", maxDepth)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return badRequest("the body is not JSON: %s", syntaxMessage(err))
		}
		key, _ := tok.(string)
		if seen[key] {
			return badRequest("duplicate key %q in %s", truncate(key, 60), where(path))
		}
		seen[key] = true
		if err := walkValue(dec, depth, path+"."+key); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	if err != nil {
		return badRequest("the body is not JSON: %s", syntaxMessage(err))
	}
	return nil
}

func walkValue(dec *json.Decoder, depth int, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return badRequest("the body is not JSON: %s", syntaxMessage(err))
	}
	d, ok := tok.(json.Delim)
	switch {
	case !ok:
		return nil
	case d == '{':
		return walkObject(dec, depth+1, path)
	case d == '[':
		return walkArray(dec, depth+1, path)
	}
	return badRequest("the body is not JSON")
}

func walkArray(dec *json.Decoder, depth int, path string) error {
	if depth > maxDepth {
		return badRequest("the JSON is nested more than %d levels deep", maxDepth)
	}
	for dec.More() {
		if err := walkValue(dec, depth, path+"[]"); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return badRequest("the body is not JSON: %s", syntaxMessage(err))
	}
	return nil
}

func where(path string) string {
	if path == "" {
		return "the resource"
	}
	return truncate(strings.TrimPrefix(path, "."), 80)
}

func syntaxMessage(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "it ends too early"
	}
	return "malformed"
}

// decodeError turns a decoding error into a 400 that names the field, or a
// 422 for a code outside its value set (the models' enums refuse those).
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	msg := err.Error()
	switch {
	case errors.As(err, &te):
		return badRequest("field %s: expected %s, got JSON %s", where(te.Field), te.Type.String(), te.Value)
	case errors.As(err, &se):
		return badRequest("the body is not JSON: %s", syntaxMessage(err))
	case strings.HasPrefix(msg, "json: unknown field "):
		return badRequest("unknown field %s", truncate(strings.TrimPrefix(msg, "json: unknown field "), 80))
	case strings.HasPrefix(msg, "unknown ") && strings.Contains(msg, " code "):
		return unprocessable("%s", truncate(msg, 200))
	}
	return badRequest("the body could not be read as this resource: %s", truncate(msg, 200))
}
