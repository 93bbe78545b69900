package notify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/nicholas-fedor/shoutrrr"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"

	"github.com/bunkerbackup/bunker/internal/plan"
)

// sendService delivers ev through a Shoutrrr service URL (ntfy, Gotify,
// PagerDuty, Slack, Teams, Telegram, Matrix, Discord, SMTP…): the title,
// then the message and the event's facts. The URL is a secret reference;
// errors name the service by its scheme and host only.
func (n *Notifier) sendService(ctx context.Context, i int, sv *plan.Service, ev Event) error {
	raw, err := plan.ResolveSecret(sv.URL, n.getenv, func(cmd string) (string, error) { return n.run(ctx, cmd) })
	if err != nil {
		return fmt.Errorf("service %d: url: %w", i+1, err)
	}
	name := serviceName(raw)
	sender, err := shoutrrr.CreateSender(raw)
	if err != nil {
		return fmt.Errorf("service %d (%s): %s", i+1, name, redactURL(err.Error(), raw))
	}
	var body strings.Builder
	body.WriteString(truncate(ev.Message, maxMessage, "…"))
	for _, f := range factList(ev, n.hostname) {
		fmt.Fprintf(&body, "\n%s: %s", f[0], f[1])
	}
	title := truncate(oneLine(ev.Title), maxTitle, "…")
	return n.deliver(ctx, fmt.Sprintf("service %d (%s)", i+1, name), func(ctx context.Context) error {
		if errs := sender.Send(strings.TrimSpace(body.String()), &types.Params{"title": title}); len(errs) > 0 {
			var all []error
			for _, e := range errs {
				if e != nil {
					all = append(all, errors.New(redactURL(e.Error(), raw)))
				}
			}
			return errors.Join(all...)
		}
		return nil
	})
}

// serviceName is a service URL's scheme and host: what errors and logs
// may show of it.
func serviceName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "unparsable URL"
	}
	return u.Scheme + "://" + u.Hostname()
}

// redactURL keeps a service URL's secrets out of an error text that may
// quote it, whole or in parts: services carry tokens in the user
// information (telegram://TOKEN@…), in the path (Discord's and Teams'
// webhook tokens, ntfy topics) and in query values.
func redactURL(msg, raw string) string {
	if raw == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, raw, serviceName(raw))
	u, err := url.Parse(raw)
	if err != nil {
		return msg
	}
	secrets := []string{u.User.Username()}
	if pw, ok := u.User.Password(); ok {
		secrets = append(secrets, pw)
	}
	secrets = append(secrets, strings.Split(u.Path, "/")...)
	for _, vs := range u.Query() {
		secrets = append(secrets, vs...)
	}
	for _, v := range secrets {
		if len(v) >= 4 { // shorter parts ("api", "yes") say nothing and are everywhere
			msg = strings.ReplaceAll(msg, v, "***")
		}
	}
	return msg
}
