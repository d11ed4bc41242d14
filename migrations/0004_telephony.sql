ALTER TABLE "agents" ADD COLUMN "recording" jsonb DEFAULT '{"enabled":false,"disclosure":"This call is recorded."}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "phone_number_id" text;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "campaign_id" text;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "contact_id" text;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "idempotency_key" text;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "machine_detection" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "answered_by" text;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "answered_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "duration_seconds" integer;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "recording_key" text;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "recording_bytes" integer;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "transfer" jsonb;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "deleted_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "calls" ADD CONSTRAINT "calls_phone_number_id_phone_numbers_id_fk" FOREIGN KEY ("phone_number_id") REFERENCES "public"."phone_numbers"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "calls_idempotency_key" ON "calls" USING btree ("organization_id","idempotency_key");--> statement-breakpoint
CREATE INDEX "calls_org_created_idx" ON "calls" USING btree ("organization_id","created_at");