package ui

import (
	"strings"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// commander writes the `kudod` commands the page shows: the UI itself never changes the
// cluster, so every action is a command to copy, with the connection flags `kudod ui` was
// started with.
type commander struct {
	// flags are appended to every command (--kubeconfig, --context).
	flags []string
	// has reports whether this kudod binary has a subcommand (retry comes with a later release).
	has func(name string) bool
}

func (c commander) command(args ...string) string {
	parts := append(append([]string{"kudod"}, args...), c.flags...)
	for i, p := range parts {
		parts[i] = shellQuote(p)
	}
	return strings.Join(parts, " ")
}

func (c commander) available(name string) bool { return c.has == nil || c.has(name) }

// trigger runs a plan once; cleanup runs only when an instance leaves git.
func (c commander) trigger(in *v1alpha1.Instance, plan string) string {
	if plan == "cleanup" || !c.available("trigger") {
		return ""
	}
	return c.command("trigger", in.Name, plan, "-n", in.Namespace)
}

// forInstance are the commands that apply to the instance as it is now.
func (c commander) forInstance(in *v1alpha1.Instance) []Command {
	out := []Command{{Label: "Show the plan tree", Text: c.command("status", in.Name, "-n", in.Namespace)}}
	if in.Status.ActivePlan != nil && c.available("abort") {
		out = append(out, Command{Label: "Abort the running plan", Text: c.command("abort", in.Name, "-n", in.Namespace)})
	}
	if lp := in.Status.LastPlan; lp != nil && lp.Status == v1alpha1.StatusFatalError && in.Status.ActivePlan == nil && c.available("retry") {
		out = append(out, Command{Label: "Retry the failed plan", Text: c.command("retry", in.Name, "-n", in.Namespace)})
	}
	if plan := currentPlanName(in); plan != "" && in.Status.ActivePlan == nil {
		if t := c.trigger(in, plan); t != "" {
			out = append(out, Command{Label: "Run " + plan + " again", Text: t})
		}
	}
	if r := repositoryOf(in); r != "" && c.available("reconcile") {
		out = append(out, Command{Label: "Poll its repository now", Text: c.command("reconcile", r)})
	}
	return out
}

// shellQuote quotes a word for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@%+,", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}
