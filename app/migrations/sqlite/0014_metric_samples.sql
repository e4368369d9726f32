-- The figures' history (the dashboard's charts over the last hour and day). Every process adds
-- what it counted during a minute to that minute's row of each counter, and writes the last
-- value it read of each gauge; the charts sum counters over processes and take the largest
-- gauge. Rows older than two days are deleted by the sampler.
CREATE TABLE IF NOT EXISTS metric_samples (
    minute   BIGINT NOT NULL,
    process  TEXT   NOT NULL,
    name     TEXT   NOT NULL,
    value    REAL NOT NULL,
    PRIMARY KEY (minute, process, name)
);
