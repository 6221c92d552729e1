package manifests

import (
	"fmt"
	"strings"
)

// maxTemplateNesting bounds how deeply a template's control structures ({{ if }}, {{ range }},
// {{ with }}, {{ define }}, {{ block }}) and parentheses nest. text/template parses and runs them
// recursively: 60,000 nested {{ if }} in a 900 KB template took 250 MB of stack before this
// bound (its own bound, 10,000 parentheses, already takes 75 MB). Real templates nest a few
// levels.
const maxTemplateNesting = 100

// checkNesting scans a template's actions, as text/template's lexer delimits them, and refuses
// one nesting deeper than maxTemplateNesting, before the parser recurses into it.
func checkNesting(key, content string) error {
	depth, line, pos := 0, 1, 0
	for {
		i := strings.Index(content[pos:], "{{")
		if i < 0 {
			return nil
		}
		line += strings.Count(content[pos:pos+i], "\n")
		pos += i + 2
		rest := content[pos:]
		if strings.HasPrefix(rest, "- ") || strings.HasPrefix(rest, "-\t") || strings.HasPrefix(rest, "-\n") || strings.HasPrefix(rest, "-\r") {
			rest = rest[1:]
		}
		body := strings.TrimLeft(rest, " \t\r\n")
		if strings.HasPrefix(body, "/*") {
			// A comment runs to */ and may hold anything.
			j := strings.Index(body, "*/")
			if j < 0 {
				return nil // text/template reports the unclosed comment
			}
			skipped := len(rest) - len(body) + j + 2
			line += strings.Count(content[pos:pos+skipped], "\n")
			pos += skipped
			continue
		}
		word := body
		if k := strings.IndexFunc(body, func(r rune) bool { return !(r >= 'a' && r <= 'z') }); k >= 0 {
			word = body[:k]
		}
		switch word {
		case "if", "range", "with", "define", "block":
			depth++
		case "end":
			depth--
		}
		// Parentheses within the action, outside strings.
		end := actionEnd(rest)
		parens, maxParens := 0, 0
		for _, c := range rest[:end] {
			switch c {
			case '(':
				parens++
				maxParens = max(maxParens, parens)
			case ')':
				parens--
			}
		}
		if depth > maxTemplateNesting || maxParens > maxTemplateNesting {
			return fmt.Errorf("%s:%d: actions nest deeper than %d levels", key, line, maxTemplateNesting)
		}
		line += strings.Count(rest[:end], "\n")
		pos += len(content[pos:]) - len(rest) + end
	}
}

// actionEnd returns where the action starting at the beginning of s ends (at its }}), skipping
// quoted strings and raw strings, or len(s).
func actionEnd(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '}':
			if strings.HasPrefix(s[i:], "}}") {
				return i
			}
		case '"', '`', '\'':
			q := s[i]
			for i++; i < len(s) && s[i] != q; i++ {
				if s[i] == '\\' && q != '`' {
					i++
				}
			}
		}
	}
	return len(s)
}
