package watchdog

import (
	"strconv"
	"strings"
)

// codeLabel and methodLabel give the label values promhttp (and so
// of-watchdog) uses: "200", "get".
func codeLabel(code int) string {
	if code == 0 {
		code = 200
	}
	return strconv.Itoa(code)
}

func methodLabel(m string) string {
	switch m {
	case "GET", "":
		return "get"
	case "POST":
		return "post"
	case "PUT":
		return "put"
	case "DELETE":
		return "delete"
	case "PATCH":
		return "patch"
	case "HEAD":
		return "head"
	case "OPTIONS":
		return "options"
	}
	return strings.ToLower(m)
}
