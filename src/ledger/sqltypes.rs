//! The domain's enums and ids as SQLite values. A name the binary does not know (a ledger written
//! by hand, or by a newer orch-tui that slipped past the schema version) is a read error that
//! names the value, never a silent default.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::core::domain::{
    Actor, AttemptId, AttemptNo, AttemptState, EventKind, FunnelStage, Reported, Role, Substatus,
    Verdict,
};
use crate::core::state::TaskState;

macro_rules! sql_name {
    ($($t:ident),+) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $t {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = v.as_str()?;
                $t::parse(s).ok_or_else(|| {
                    FromSqlError::Other(
                        format!(
                            "unknown {} `{s}` in the ledger (written by a newer orch-tui, or by hand?)",
                            stringify!($t)
                        )
                        .into(),
                    )
                })
            }
        }
    )+};
}

sql_name!(
    TaskState,
    Actor,
    EventKind,
    AttemptState,
    Role,
    Substatus,
    FunnelStage,
    Reported,
    Verdict
);

impl ToSql for AttemptId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0))
    }
}

impl FromSql for AttemptId {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(v).map(AttemptId)
    }
}

impl ToSql for AttemptNo {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0))
    }
}

impl FromSql for AttemptNo {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        u32::column_result(v).map(AttemptNo)
    }
}
