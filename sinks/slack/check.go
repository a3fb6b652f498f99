package slack

import (
	"fmt"

	goslack "github.com/slack-go/slack"
)

// CheckLimits reports the first Block Kit limit a message breaks, or nil.
// Render never breaks one; the sink checks anyway before posting and falls
// back to a plain message rather than have Slack reject the finding.
func CheckLimits(m Message) error {
	if len(m.Blocks) > MaxBlocks {
		return fmt.Errorf("%d blocks (limit %d)", len(m.Blocks), MaxBlocks)
	}
	if n := textLen(m.Text); n > MaxFallbackText {
		return fmt.Errorf("notification text of %d characters (limit %d)", n, MaxFallbackText)
	}
	text := func(where string, t *goslack.TextBlockObject, limit int) error {
		if t == nil {
			return nil
		}
		if n := textLen(t.Text); n > limit {
			return fmt.Errorf("%s: text of %d characters (limit %d)", where, n, limit)
		}
		if t.Text == "" {
			return fmt.Errorf("%s: empty text", where)
		}
		return nil
	}
	for i, b := range m.Blocks {
		where := fmt.Sprintf("block %d (%s)", i, b.BlockType())
		switch b := b.(type) {
		case *goslack.HeaderBlock:
			if err := text(where, b.Text, MaxHeaderText); err != nil {
				return err
			}
		case *goslack.SectionBlock:
			if b.Text == nil && len(b.Fields) == 0 {
				return fmt.Errorf("%s: neither text nor fields", where)
			}
			if err := text(where, b.Text, MaxSectionText); err != nil {
				return err
			}
			if len(b.Fields) > MaxFields {
				return fmt.Errorf("%s: %d fields (limit %d)", where, len(b.Fields), MaxFields)
			}
			for j, f := range b.Fields {
				if err := text(fmt.Sprintf("%s field %d", where, j), f, MaxFieldText); err != nil {
					return err
				}
			}
		case *goslack.ContextBlock:
			els := b.ContextElements.Elements
			if len(els) == 0 || len(els) > MaxContextElems {
				return fmt.Errorf("%s: %d elements (1 to %d)", where, len(els), MaxContextElems)
			}
			for _, e := range els {
				if t, ok := e.(*goslack.TextBlockObject); ok {
					if err := text(where, t, MaxSectionText); err != nil {
						return err
					}
				}
			}
		case *goslack.ActionBlock:
			if b.Elements == nil || len(b.Elements.ElementSet) == 0 || len(b.Elements.ElementSet) > MaxActionElems {
				return fmt.Errorf("%s: 1 to %d elements", where, MaxActionElems)
			}
			for _, e := range b.Elements.ElementSet {
				btn, ok := e.(*goslack.ButtonBlockElement)
				if !ok {
					continue
				}
				if err := text(where+" button", btn.Text, MaxButtonText); err != nil {
					return err
				}
				if len(btn.Value) > MaxButtonValue {
					return fmt.Errorf("%s: button value of %d characters (limit %d)", where, len(btn.Value), MaxButtonValue)
				}
			}
		}
	}
	return nil
}
