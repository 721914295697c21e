//! The bare tokio-tungstenite server (this executable started with `--bare-server`).

use super::*;

/// A tokio-tungstenite server with no protocol: every binary message a client sends is written
/// to every other client. Default WebSocket settings apart from the message size limit (and
/// the read buffer, if `read_buffer` is given), and like the relay (axum's `serve`) no
/// `TCP_NODELAY` on accepted sockets.
pub(crate) fn bare_server_main(read_buffer: Option<usize>) {
    // Exit with the parent: it holds our stdin.
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        use std::io::Read as _;
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        println!(
            "listening {}",
            listener.local_addr().expect("a bound listener")
        );
        let (tx, _) = tokio::sync::broadcast::channel::<(u64, Bytes)>(64);
        let mut next = 0u64;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            next += 1;
            tokio::spawn(bare_conn(stream, next, tx.clone(), read_buffer));
        }
    });
}

pub(crate) async fn bare_conn(
    stream: TcpStream,
    id: u64,
    tx: tokio::sync::broadcast::Sender<(u64, Bytes)>,
    read_buffer: Option<usize>,
) {
    let mut config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    if let Some(n) = read_buffer {
        config = config.read_buffer_size(n);
    }
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let mut rx = tx.subscribe();
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(WsMessage::Binary(b))) => {
                    let _ = tx.send((id, b));
                }
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            msg = rx.recv() => match msg {
                Ok((from, bytes)) if from != id => {
                    if sink.send(WsMessage::Binary(bytes)).await.is_err() {
                        break;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
        }
    }
}
