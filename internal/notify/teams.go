package notify

import (
	"encoding/json"
	"net/http"
)

// teams posts an Adaptive Card to a Microsoft Teams incoming webhook (or a Workflows webhook,
// which takes the same message): a message whose one attachment is the card, as Teams' "Send
// Adaptive Cards using an Incoming Webhook" shows. The URL is the secret; there is no
// signature.
type teams struct{}

func (teams) signs() bool { return false }

const (
	teamsCardType   = "application/vnd.microsoft.card.adaptive"
	teamsCardSchema = "http://adaptivecards.io/schemas/adaptive-card.json"
	// teamsMessageLimit keeps a card well under Teams' 28 KB message size.
	teamsMessageLimit = 2000
)

type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string    `json:"contentType"`
	ContentURL  *string   `json:"contentUrl"`
	Content     teamsCard `json:"content"`
}

type teamsCard struct {
	Schema  string           `json:"$schema"`
	Type    string           `json:"type"`
	Version string           `json:"version"`
	Body    []map[string]any `json:"body"`
}

type teamsFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

func (teams) encode(e Event, _ string, _ []byte) ([]byte, http.Header, error) {
	color := "Good"
	if e.Outcome != "completed" {
		color = "Attention"
	}
	facts := []teamsFact{
		{Title: "Trigger", Value: e.triggerText()},
		{Title: "Operator", Value: e.Operator.Name + " " + e.Operator.Version},
		{Title: "Duration", Value: e.duration().String()},
	}
	if e.Revision != "" {
		facts = append(facts, teamsFact{Title: "Revision", Value: shortSHA(e.Revision)})
	}
	if e.FailedStep != "" {
		facts = append(facts, teamsFact{Title: "Failed step", Value: e.FailedStep})
	}
	body := []map[string]any{
		{"type": "TextBlock", "text": "kudod: " + e.title(), "weight": "Bolder", "size": "Medium", "color": color, "wrap": true},
	}
	if e.Message != "" {
		body = append(body, map[string]any{"type": "TextBlock", "text": cut(e.Message, teamsMessageLimit), "wrap": true})
	}
	body = append(body, map[string]any{"type": "FactSet", "facts": facts})
	msg := teamsMessage{Type: "message", Attachments: []teamsAttachment{{
		ContentType: teamsCardType,
		Content:     teamsCard{Schema: teamsCardSchema, Type: "AdaptiveCard", Version: "1.2", Body: body},
	}}}
	out, err := json.Marshal(msg)
	return out, nil, err
}
