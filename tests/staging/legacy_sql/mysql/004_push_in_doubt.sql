-- A status push whose answer was never recorded: status-sync writes the (status, error) it is
-- about to push here before the requests go out, and clears it when it records the outcome. If
-- the process dies in between, the next status-sync finds the same value still here and counts
-- its push as `repushed_after_crash` (AppZen may now hear that status twice).

ALTER TABLE invoices ADD COLUMN push_in_doubt LONGTEXT;
