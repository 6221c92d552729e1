package config

import (
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kudod-dev/kudod/internal/notify"
)

// Notification is one entry of the top-level notifications: where plan outcomes go
// (docs/configuration.md, notifications[]; docs/recovery.md, Notifications).
type Notification struct {
	// Name identifies the notification in logs and metrics; a DNS-1123 label, unique.
	Name string
	// Type is webhook, slack or teams.
	Type string
	// URL (webhook only: a Slack or Teams URL is a secret) or URLFile, an absolute path read
	// at each delivery, is where deliveries go.
	URL     string
	URLFile string
	// SecretFile holds the HMAC-SHA256 key that signs webhook bodies (X-Kudod-Signature).
	SecretFile string
	// Outcomes, Plans and Triggers select the plan outcomes sent (empty: all).
	Outcomes []string
	Plans    []string
	Triggers []string
}

func (d *decoder) notifications(n *yaml.Node, field string) []Notification {
	names := map[string]int{}
	return list(d, n, field, func(item *yaml.Node, f string) Notification {
		nt := d.notification(item, f)
		if nt.Name != "" {
			if line, dup := names[nt.Name]; dup {
				d.errorf(item, f+".name", "duplicate notification name %q (first on line %d)", nt.Name, line)
			} else {
				names[nt.Name] = deref(item).Line
			}
		}
		return nt
	})
}

func (d *decoder) notification(n *yaml.Node, field string) Notification {
	var nt Notification
	var urlNode *yaml.Node
	d.fields(n, field, fieldSet{
		"name": func(v *yaml.Node, f string) {
			nt.Name = d.str(v, f)
			if nt.Name != "" && (len(nt.Name) > 63 || !dnsLabel.MatchString(nt.Name)) {
				d.errorf(v, f, "%q is not a DNS-1123 label (lower case letters, digits and '-', at most 63)", nt.Name)
			}
		},
		"type": func(v *yaml.Node, f string) {
			nt.Type = d.str(v, f)
			if known, _ := notify.KnownType(nt.Type); !known {
				d.errorf(v, f, "unknown type %q (%s)", nt.Type, strings.Join(notify.Types(), ", "))
			}
		},
		"url":        func(v *yaml.Node, f string) { urlNode = v; nt.URL = d.notificationURL(v, f) },
		"urlFile":    func(v *yaml.Node, f string) { nt.URLFile = d.filePath(v, f) },
		"secretFile": func(v *yaml.Node, f string) { nt.SecretFile = d.filePath(v, f) },
		"outcomes": func(v *yaml.Node, f string) {
			nt.Outcomes = d.choices(v, f, notify.KnownOutcome, notify.Outcomes())
		},
		"plans": func(v *yaml.Node, f string) { nt.Plans = d.stringList(v, f) },
		"triggers": func(v *yaml.Node, f string) {
			nt.Triggers = d.choices(v, f, notify.KnownTrigger, notify.Triggers())
		},
	})
	at := deref(n)
	if nt.Name == "" {
		d.errorf(at, field, "name is required")
	}
	known, signs := notify.KnownType(nt.Type)
	switch {
	case nt.Type == "":
		d.errorf(at, field, "type is required (%s)", strings.Join(notify.Types(), ", "))
	case known && !signs && nt.SecretFile != "":
		d.errorf(at, field+".secretFile", "only a webhook signs its deliveries: a %s URL is its own secret", nt.Type)
	case known && !signs && urlNode != nil:
		d.errorf(urlNode, field+".url", "a %s URL is a secret: put it in a file mounted from a Secret and name it with urlFile", nt.Type)
	}
	if (nt.URL == "") == (nt.URLFile == "") && urlNode == nil {
		d.errorf(at, field, "set url or urlFile (one of them)")
	} else if nt.URL != "" && nt.URLFile != "" {
		d.errorf(at, field, "set url or urlFile, not both")
	}
	return nt
}

// notificationURL reads an http(s) URL without credentials.
func (d *decoder) notificationURL(n *yaml.Node, field string) string {
	s := d.str(n, field)
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		d.errorf(n, field, "%q is not an http(s) URL", s)
		return ""
	case u.User != nil:
		d.errorf(n, field, "must not contain credentials; sign deliveries with secretFile")
		return ""
	}
	return s
}

// choices reads a list of values from a fixed set.
func (d *decoder) choices(n *yaml.Node, field string, ok func(string) bool, all []string) []string {
	return list(d, n, field, func(item *yaml.Node, f string) string {
		s := d.str(item, f)
		if !ok(s) {
			d.errorf(item, f, "unknown value %q (%s)", s, strings.Join(all, ", "))
		}
		return s
	})
}

// NotifyTargets returns the notifications as the notifier takes them.
func (c *Config) NotifyTargets() []notify.Notification {
	out := make([]notify.Notification, 0, len(c.Notifications))
	for _, n := range c.Notifications {
		out = append(out, notify.Notification{
			Name: n.Name, Type: n.Type, URL: n.URL, URLFile: n.URLFile, SecretFile: n.SecretFile,
			Outcomes: n.Outcomes, Plans: n.Plans, Triggers: n.Triggers,
		})
	}
	return out
}
