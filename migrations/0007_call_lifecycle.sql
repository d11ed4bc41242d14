CREATE TABLE "serve_nodes" (
	"id" text PRIMARY KEY NOT NULL,
	"hostname" text NOT NULL,
	"pid" integer NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"heartbeat_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "media_node_id" text;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "media_ended_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "carrier_status" text;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "carrier_final_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "finalized_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "calls_unfinalized_idx" ON "calls" USING btree ("created_at") WHERE "calls"."finalized_at" is null;--> statement-breakpoint
-- Calls that ended before finalization existed are final as they are: no late call.ended for them.
UPDATE "calls" SET "finalized_at" = "ended_at" WHERE "ended_at" IS NOT NULL;
