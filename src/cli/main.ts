console.log("chatnode");
