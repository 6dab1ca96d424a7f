package tlspolicy

import "testing"

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                        "plain",
		"550 a\r\n550-b\n\tc":          "550 a 550-b c",
		"  two  spaces\x00\x1b[31mred": "two spaces[31mred",
		"":                             "",
		"\r\n\t ":                      "",
	} {
		if got := OneLine(in); got != want {
			t.Errorf("OneLine(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (&Error{Kind: KindPolicy, Msg: "a\nb"}).Error(); got != "tls-policy: a b" {
		t.Errorf("Error() = %q, want one line", got)
	}
}
