//! The seed's EchoServer: `ping` is answered with `pong` and how many pings came before;
//! `notify` logs its text.
//!
//! ```text
//! $ otter call echo '"ping"'
//! {"pong":1}
//! $ otter cast echo '{"notify":"hello"}'
//! ```

use otter_guest::{GenServer, Init, NoReply, Reply, ReplyTo, log};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Echo {
    count: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    Ping,
    Count,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Pong(u64),
    Count(u64),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Cast {
    Notify(String),
}

impl GenServer for Echo {
    type Args = ();
    type Call = Call;
    type Reply = Answer;
    type Cast = Cast;
    type Info = ();
    type Continue = ();
    const VSN: &'static str = "1";

    fn init(_: ()) -> Init<Self> {
        Init::ok(Echo::default())
    }

    fn handle_call(&mut self, request: Call, _from: ReplyTo) -> Reply<Answer> {
        match request {
            Call::Ping => {
                self.count += 1;
                Reply::ok(Answer::Pong(self.count))
            }
            Call::Count => Reply::ok(Answer::Count(self.count)),
        }
    }

    fn handle_cast(&mut self, request: Cast) -> NoReply {
        match request {
            Cast::Notify(text) => log::info("notify", &[("text", &text)]),
        }
        NoReply::ok()
    }
}

otter_guest::export_genserver!(Echo);

#[cfg(test)]
mod tests {
    use otter_guest::testing::{self, HostCall, LogLevel};

    use super::*;

    #[test]
    fn ping_counts_and_notify_logs_its_text() {
        let mut echo: Echo = testing::init(());
        for n in 1..=2 {
            let reply = testing::call(&mut echo, &"ping").expect("\"ping\" decodes");
            assert!(matches!(reply, Reply::Reply(Answer::Pong(c), _) if c == n));
        }
        let note = std::collections::BTreeMap::from([("notify", "hello")]);
        testing::cast(&mut echo, &note).expect("{\"notify\":...} decodes");
        assert_eq!(
            testing::take(),
            [HostCall::Log {
                level: LogLevel::Info,
                message: "notify".into(),
                fields: vec![("text".into(), "hello".into())],
            }]
        );
    }
}
