// Words for what an AI draft proposes, for the reviewer who decides.
import type { ActionProposal } from './wire/ActionProposal';

export function actionLabel(a: ActionProposal): string {
  switch (a.type) {
    case 'add_seats':
      return `Raise the subscription to ${a.seats} seats`;
    case 'change_plan':
      return `Move the account to the ${a.plan_code} plan`;
    case 'open_request':
      return `Open a ${a.kind.replace(/_/g, ' ')} request: “${a.title}”`;
    case 'point_to_entitlement':
      return `Point the customer to ${a.feature} (already in their plan)`;
  }
}
