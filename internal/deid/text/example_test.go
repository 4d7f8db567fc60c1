package text_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/medsec/medsec/internal/deid/text"
)

func ExampleRedactor_Redact() {
	red := text.NewRedactor(text.Options{}) // Tags mode
	out, findings := red.Redact("환자 김민수(M/67), 연락처 010-1234-5678. Seen by Dr. Okafor on 2023-03-14.")
	fmt.Println(out)
	for _, f := range findings {
		fmt.Printf("%s %q %.2f\n", f.Kind, f.Text, f.Confidence)
	}
	// Output:
	// 환자 [NAME](M/67), 연락처 [PHONE]. Seen by Dr. [NAME] on [DATE].
	// NAME "김민수" 1.00
	// PHONE "010-1234-5678" 1.00
	// NAME "Okafor" 0.75
	// DATE "2023-03-14" 0.95
}

func ExampleRedactReader() {
	red := text.NewRedactor(text.Options{
		Mode:          text.Surrogates,
		Secret:        []byte("per-dataset secret from the key store"),
		DateShiftDays: -30,
	})
	note := "Admitted 2023-03-14, discharged 2023-03-20.\n"
	if err := text.RedactReader(context.Background(), strings.NewReader(note), os.Stdout, red); err != nil {
		fmt.Println(err)
	}
	// Output:
	// Admitted 2023-02-12, discharged 2023-02-18.
}
