// The seed's services, verbatim (MyService, Counter, PaymentWorkflow). Added only what they need to
// compile and run: the Payment type, stand-ins for the payment provider's calls, and one endpoint
// binding all three services.
import * as restate from "@restatedev/restate-sdk";

type Payment = { amount: number };
type Reservation = { id: string; amount: number };

// Stand-ins for a payment provider's API: each returns at once, so the example runs offline.
async function reserveFunds(payment: Payment): Promise<Reservation> {
  return { id: `res-${payment.amount}`, amount: payment.amount };
}

async function cancelReservation(reservation: Reservation): Promise<void> {
  console.log(`cancelled reservation ${reservation.id}`);
}

async function completePayment(reservation: Reservation): Promise<void> {
  console.log(`completed payment of ${reservation.amount} (${reservation.id})`);
}

const myService = restate.service({
  name: "MyService",
  handlers: {
    greet: async (ctx: restate.Context, name: string) => {
      return "Hello, " + name + "!";
    },
  },
});

const counter = restate.object({
  name: "Counter",
  handlers: {
    add: async (ctx: restate.ObjectContext, value: number) => {
      const current = (await ctx.get<number>("count")) ?? 0;
      ctx.set("count", current + value);
      return current + value;
    },
    get: restate.handlers.object.shared(
      async (ctx: restate.ObjectSharedContext) => {
        return (await ctx.get<number>("count")) ?? 0;
      }
    ),
  },
});

const paymentWorkflow = restate.workflow({
  name: "PaymentWorkflow",
  handlers: {
    run: async (ctx: restate.WorkflowContext, payment: Payment) => {
      // Step 1: Reserve funds
      const reservation = await ctx.run("reserve", () =>
        reserveFunds(payment)
      );

      // Step 2: Wait for approval (awakeable)
      const approved = await ctx.promise<boolean>("approval");
      if (!approved) {
        await ctx.run("cancel", () => cancelReservation(reservation));
        return { status: "cancelled" };
      }

      // Step 3: Complete payment
      await ctx.run("complete", () => completePayment(reservation));
      return { status: "completed" };
    },

    approve: async (ctx: restate.WorkflowSharedContext) => {
      ctx.promise<boolean>("approval").resolve(true);
    },

    reject: async (ctx: restate.WorkflowSharedContext) => {
      ctx.promise<boolean>("approval").resolve(false);
    },
  },
});

restate.endpoint().bind(myService).bind(counter).bind(paymentWorkflow).listen(9080);
