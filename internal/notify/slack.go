package notify

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// slack posts to a Slack incoming webhook: a text, shown in notifications, and Block Kit
// blocks (a section with the outcome and message, a section of fields), as Slack's incoming
// webhooks take them. The URL is the secret; there is no signature.
type slack struct{}

func (slack) signs() bool { return false }

// Slack's limits: a section's text at most 3000 characters, a field's 2000.
const slackMessageLimit = 2000

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type slackBlock struct {
	Type   string      `json:"type"`
	Text   *slackText  `json:"text,omitempty"`
	Fields []slackText `json:"fields,omitempty"`
}

type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// slackEscape escapes what Slack reads as markup (<!channel> would ping a whole channel).
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func (slack) encode(e Event, _ string, _ []byte) ([]byte, http.Header, error) {
	icon := ":white_check_mark:"
	if e.Outcome != "completed" {
		icon = ":x:"
	}
	head := fmt.Sprintf("%s *%s*", icon, slackEscape("kudod: "+e.title()))
	if e.Message != "" {
		head += "\n" + slackEscape(cut(e.Message, slackMessageLimit))
	}
	fields := []slackText{
		{Type: "mrkdwn", Text: "*Trigger*\n" + slackEscape(e.triggerText())},
		{Type: "mrkdwn", Text: "*Operator*\n" + slackEscape(e.Operator.Name+" "+e.Operator.Version)},
		{Type: "mrkdwn", Text: "*Duration*\n" + e.duration().String()},
	}
	if e.Revision != "" {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*Revision*\n`" + shortSHA(e.Revision) + "`"})
	}
	if e.FailedStep != "" {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*Failed step*\n" + slackEscape(e.FailedStep)})
	}
	msg := slackMessage{
		Text: "kudod: " + e.title(),
		Blocks: []slackBlock{
			{Type: "section", Text: &slackText{Type: "mrkdwn", Text: head}},
			{Type: "section", Fields: fields},
		},
	}
	body, err := json.Marshal(msg)
	return body, nil, err
}

// cut shortens s to at most n runes, the last being "…".
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
