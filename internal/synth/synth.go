// Package synth makes synthetic, realistic-looking hospital data for the
// demo, tests and benchmarks: Korean patients with names in Hangul, resident
// registration numbers with a valid structure and check digit, mobile
// numbers and addresses. Every value is invented; none belongs to a person.
package synth

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Person is one synthetic patient's identity.
type Person struct {
	Name      string // Hangul, e.g. 김민수
	Romanized string // e.g. Kim Min-su
	RRN       string // YYMMDD-GNNNNNC
	Phone     string // 010-NNNN-NNNN
	BirthDate string // YYYY-MM-DD
	Sex       string // male | female
	Address   string
}

// Generator makes synthetic people deterministically from a seed.
type Generator struct{ r *rand.Rand }

// New returns a generator for seed.
func New(seed uint64) *Generator {
	return &Generator{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

var (
	surnames = []struct{ h, r string }{{"김", "Kim"}, {"이", "Lee"}, {"박", "Park"}, {"최", "Choi"}, {"정", "Jung"},
		{"강", "Kang"}, {"조", "Cho"}, {"윤", "Yoon"}, {"장", "Jang"}, {"임", "Lim"}, {"한", "Han"}, {"오", "Oh"},
		{"서", "Seo"}, {"신", "Shin"}, {"권", "Kwon"}, {"황", "Hwang"}, {"안", "Ahn"}, {"송", "Song"}}
	given = []struct{ h, r string }{{"민", "min"}, {"서", "seo"}, {"지", "ji"}, {"현", "hyun"}, {"수", "su"},
		{"영", "young"}, {"준", "jun"}, {"하", "ha"}, {"윤", "yun"}, {"은", "eun"}, {"도", "do"}, {"우", "woo"},
		{"예", "ye"}, {"진", "jin"}, {"호", "ho"}, {"연", "yeon"}, {"태", "tae"}, {"소", "so"}, {"유", "yu"}, {"채", "chae"}}
	districts = []string{"서울특별시 강남구 테헤란로", "서울특별시 마포구 월드컵북로", "부산광역시 해운대구 센텀중앙로",
		"대구광역시 수성구 달구벌대로", "인천광역시 연수구 컨벤시아대로", "광주광역시 서구 상무중앙로",
		"대전광역시 유성구 대학로", "경기도 성남시 분당구 판교역로", "경기도 수원시 영통구 광교중앙로"}
)

// Person makes the next synthetic person.
func (g *Generator) Person() Person {
	s := surnames[g.r.IntN(len(surnames))]
	a, b := given[g.r.IntN(len(given))], given[g.r.IntN(len(given))]
	birth := time.Date(1935+g.r.IntN(85), time.Month(1+g.r.IntN(12)), 1+g.r.IntN(28), 0, 0, 0, 0, time.UTC)
	sex := "male"
	if g.r.IntN(2) == 1 {
		sex = "female"
	}
	return Person{
		Name:      s.h + a.h + b.h,
		Romanized: fmt.Sprintf("%s %s-%s", s.r, capitalize(a.r), b.r),
		RRN:       RRN(birth, sex, g.r),
		Phone:     fmt.Sprintf("010-%04d-%04d", 1000+g.r.IntN(9000), g.r.IntN(10000)),
		BirthDate: birth.Format("2006-01-02"),
		Sex:       sex,
		Address:   fmt.Sprintf("%s %d", districts[g.r.IntN(len(districts))], 1+g.r.IntN(400)),
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// RRN makes a resident registration number for a birth date and sex, with
// the pre-October-2020 check digit.
func RRN(birth time.Time, sex string, r *rand.Rand) string {
	g := 1
	if birth.Year() >= 2000 {
		g = 3
	}
	if sex == "female" {
		g++
	}
	digits := fmt.Sprintf("%s%d%05d", birth.Format("060102"), g, r.IntN(100000))
	return digits[:6] + "-" + digits[6:] + fmt.Sprint(RRNCheckDigit(digits))
}

// RRNCheckDigit computes the check digit over the first twelve digits.
func RRNCheckDigit(first12 string) int {
	weights := []int{2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5}
	sum := 0
	for i, w := range weights {
		sum += int(first12[i]-'0') * w
	}
	return (11 - sum%11) % 10
}
