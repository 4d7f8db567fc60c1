package tabular

import "fmt"

func init() { debugf = func(f string, a ...any) { fmt.Printf(f+"\n", a...) } }
